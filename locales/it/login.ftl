login-title = Accedi
login-submit = Accedi
login-forgot = Hai dimenticato la password?
login-failed = Email o password non corretti.
login-throttled = Troppi tentativi falliti: riprova tra { $minutes } minuti.
