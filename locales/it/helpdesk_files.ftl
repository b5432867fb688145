# Help desk: allegati delle richieste (file caricati con un messaggio).
hdf-label = Allegati
hdf-hint = Fino a 10 file, al massimo { $size } ciascuno.
hdf-note-label = Allegati della nota (visibili solo agli operatori)
hdf-pending = File già caricati
hdf-remove = Togli { $name }
hdf-files = Allegati del messaggio
hdf-download = Scarica { $name }
hd-label-attachments = Allegati
hd-label-file = File
field-unknown-file = file non trovato: caricalo di nuovo
field-file-too-large = file troppo grande
