# Help desk: ticket attachments (files uploaded with a message).
hdf-label = Attachments
hdf-hint = Up to 10 files, at most { $size } each.
hdf-note-label = Attachments of the note (agents only)
hdf-pending = Files already uploaded
hdf-remove = Remove { $name }
hdf-files = Files of the message
hdf-download = Download { $name }
hd-label-attachments = Attachments
hd-label-file = File
field-unknown-file = file not found: upload it again
field-file-too-large = file too large
