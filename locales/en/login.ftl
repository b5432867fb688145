login-title = Sign in
login-submit = Sign in
login-forgot = Forgot your password?
login-failed = Wrong email or password.
login-throttled = Too many failed attempts: try again in { $minutes } minutes.
