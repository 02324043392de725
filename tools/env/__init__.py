"""The pinned environment: `bin/env-run` (env_runner) and the interpreter start-up hook that
imports tf_ccfrec.compat in every Python of it (startup_hook)."""
