"""A `.pth` file that imports `tf_ccfrec.compat` when any Python of the environment starts.

Every tf-ccfrec entry point imports `tf_ccfrec.compat` first, but some processes are not ours
to start: Beam's multi-processing DirectRunner (and Dataflow, Flink or Spark workers) start
fresh interpreters that unpickle TFX's DoFns, and `tfx.components` imports
`tensorflow_recommenders`, which fails under TF 2.21 without the compat hook (see compat.py).
Site-packages `.pth` lines that begin with `import` run at interpreter start-up; this one is a
no-op where tf_ccfrec is not importable or CCFREC_NO_STARTUP_HOOK is set (to see the stack
without the compat module, as tests/test_scann_compat.py does).

    python tools/env/startup_hook.py      writes it into this interpreter's site-packages

It is a standalone script (standard library only), so an image can run it without the
repository: the Dockerfile does.
"""

import os
import sysconfig

FILE_NAME = "tf_ccfrec_compat.pth"
DISABLE_VAR = "CCFREC_NO_STARTUP_HOOK"
LINE = ('import os; exec("if not os.environ.get(\'%s\'):\\n    try:\\n        import tf_ccfrec.compat'
        '\\n    except ImportError:\\n        pass")\n' % DISABLE_VAR)


def install(site_packages: str) -> str:
    """Writes the hook into `site_packages`; returns its path."""
    path = os.path.join(site_packages, FILE_NAME)
    with open(path, "w") as f:
        f.write(LINE)
    return path


if __name__ == "__main__":
    print(install(sysconfig.get_paths()["purelib"]))
