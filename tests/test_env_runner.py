"""The environment runner's decisions, its lock, and nesting. The runner itself runs on the host
(every `make` target goes through it), so these tests run inside what it built."""

import fcntl
import os
import sys
import signal
import subprocess

import pytest

from tests.conftest import REPO
from tools.env import env_runner as er


@pytest.mark.parametrize("text,expected", [
    ("2.36", (2, 36)), ("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36", (2, 36)),
    ("glibc 2.39", (2, 39)), ("", None), ("musl", None)])
def test_parse_glibc_version(text, expected):
    assert er.parse_glibc_version(text) == expected


@pytest.mark.parametrize("glibc,is_root,expected", [
    ((2, 38), False, "venv"),   # Debian 13, Ubuntu 24.04: a plain virtualenv, root or not
    ((2, 39), True, "venv"),
    ((3, 0), False, "venv"),
    ((2, 36), True, "rootfs"),  # Debian 12 as root: the Debian 13 rootfs
    ((2, 35), True, "rootfs"),  # Ubuntu 22.04
    (None, True, "rootfs"),     # not glibc: the rootfs brings its own
])
def test_choose_mode_auto(glibc, is_root, expected):
    assert er.choose_mode("Linux", glibc, is_root) == expected


def test_choose_mode_refusals_name_the_way_out():
    with pytest.raises(er.EnvError, match="needs root"):
        er.choose_mode("Linux", (2, 36), False)
    with pytest.raises(er.EnvError, match="Linux x86-64"):
        er.choose_mode("Darwin", None, False)
    with pytest.raises(er.EnvError, match="glibc >= 2.38"):
        er.choose_mode("Linux", (2, 36), True, requested="venv")
    with pytest.raises(er.EnvError, match="CCFREC_ENV"):
        er.choose_mode("Linux", (2, 36), True, requested="docker")


def test_choose_mode_requested():
    assert er.choose_mode("Linux", (2, 36), False, requested="host") == "host"
    assert er.choose_mode("Darwin", None, False, requested="host") == "host"
    assert er.choose_mode("Linux", (2, 39), True, requested="rootfs") == "rootfs"


def test_debian_mirror_from_deb822_sources_skips_security():
    sources = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""
    assert er.debian_mirror_from_sources([sources]) == "http://mirror.example/debian"


def test_debian_mirror_from_one_line_sources():
    sources = ("# deb http://commented.example/debian bookworm main\n"
               "deb http://mirror.example/debian-security bookworm-security main\n"
               "deb [arch=amd64] https://mirror.example/debian/ bookworm main\n")
    assert er.debian_mirror_from_sources([sources]) == "https://mirror.example/debian"


def test_debian_mirror_none_on_ubuntu():
    ubuntu = "deb http://archive.example/ubuntu jammy main\n"
    assert er.debian_mirror_from_sources([ubuntu]) is None


def test_pip_local_paths_from_config_and_environment():
    config = ("[global]\nextra-index-url = file:///srv/pypi/simple https://pypi.example/simple\n"
              "find-links=/srv/wheels\ncert = /etc/ssl/certs/ca.crt\ntimeout = 60\n")
    env = {"PIP_FIND_LINKS": "/srv/wheels /srv/more-wheels", "PIP_INDEX_URL": "https://x/simple"}
    assert er.pip_local_paths([config], env) == [
        "/srv/pypi", "/srv/wheels", "/etc/ssl/certs/ca.crt", "/srv/more-wheels"]


def test_requirements_key_follows_contents_and_python():
    files = {"base.txt": "tensorflow==2.21.0\n", "test.txt": "pytest==9.2.0\n"}
    key = er.requirements_key(files, "rootfs-trixie")
    assert key == er.requirements_key(dict(files), "rootfs-trixie")
    assert key != er.requirements_key({**files, "base.txt": "tensorflow==2.20.0\n"},
                                      "rootfs-trixie")
    assert key != er.requirements_key(files, "venv-3.12")


def test_inner_environment_drops_host_python_settings():
    env = er.inner_environment({"PYTHONHOME": "/x", "PYTHONPATH": "/y", "CI": "true",
                                "PATH": "/host/bin"}, "/opt/ccfrec/venv-k", "/src/repo")
    assert "PYTHONHOME" not in env
    assert env["PYTHONPATH"] == "/src/repo"
    assert env["PATH"].split(os.pathsep)[0] == "/opt/ccfrec/venv-k/bin"
    assert "/host/bin" not in env["PATH"]
    assert env["TF_USE_LEGACY_KERAS"] == "1"
    assert env["CI"] == "true"
    assert env[er.ACTIVE_VAR] == "/opt/ccfrec/venv-k"


def test_inner_environment_tunes_malloc_unless_the_caller_did():
    env = er.inner_environment({"PATH": "/bin"}, "/v", "/r")
    assert env["GLIBC_TUNABLES"] == er.MALLOC_TUNABLES
    assert "glibc.malloc.mmap_threshold" in env["GLIBC_TUNABLES"]
    assert "glibc.malloc.arena_max=1" in env["GLIBC_TUNABLES"]
    own = er.inner_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}, "/v", "/r")
    assert own["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=4"


def test_pipeline_image_sets_the_same_malloc_tunables():
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    assert "GLIBC_TUNABLES=%s " % er.MALLOC_TUNABLES in dockerfile


def test_venv_environment_runs_commands_directly(tmp_path):
    env = er.VenvEnvironment(str(tmp_path), {"base.txt": "x==1\n"})
    argv, child_env = env.exec_argv(["python", "-V"], "/anywhere")
    assert argv == ["python", "-V"]
    assert child_env["PATH"].startswith(os.path.join(str(tmp_path), "venv-"))
    assert not env.ready()


def test_rootfs_command_binds_repo_and_runs_in_a_private_namespace(tmp_path):
    env = er.RootfsEnvironment(str(tmp_path), {"base.txt": "x==1\n"})
    argv, _ = env.exec_argv(["python", "-m", "pytest"], REPO)
    # No --fork: unshare, sh and chroot exec one another, so the command keeps env-run's pid
    # and a supervisor's signals reach it.
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[-1]
    assert "mount --bind %s \"$R\"%s" % (REPO, REPO) in script
    assert "mount -t proc proc" in script
    assert "mount --bind /etc/resolv.conf" in script
    assert script.rstrip().endswith("python -m pytest")
    assert "exec chroot \"$R\"" in script


SIGNALLED = """
import os, signal, sys, time
def stop(signum, frame):
    print("stopping on", signum, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("ready", os.getpid(), flush=True)
time.sleep(120)
sys.exit(3)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_wrapper_passes_signals_to_the_command(tmp_path, signum):
    """The rootfs wrapper's own argv (unshare, its mounts, chroot; here into "/", this
    environment's root) runs a command that keeps the wrapper's pid: a signal sent to the
    wrapper's process is the command's, which stops cleanly and whose exit code comes back."""
    script = tmp_path / "signalled.py"
    script.write_text(SIGNALLED)
    env = er.RootfsEnvironment(str(tmp_path), {"base.txt": "x==1\n"})
    argv = env._enter_argv("/", [sys.executable, str(script)], str(tmp_path), bind_repo=False)
    # Inside this chroot "/" is no mount point, whose propagation unshare could change; the
    # rest of the argv is the wrapper's own.
    assert argv[2:4] == ["--propagation", "private"]
    argv[3] = "unchanged"
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        ready = process.stdout.readline().split()
        assert ready[:1] == ["ready"], ready
        assert int(ready[1]) == process.pid
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
        assert f"stopping on {int(signum)}" in process.stdout.read()
    finally:
        process.kill()


def test_lock_excludes_builders_while_in_use(tmp_path):
    user = er.Lock(str(tmp_path), "k.use")
    user.shared()
    other = os.open(user.path, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another user: fine
        fcntl.flock(other, fcntl.LOCK_UN)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a builder must wait
    finally:
        os.close(other)


def test_this_process_runs_in_the_built_environment():
    assert os.environ.get(er.ACTIVE_VAR)
    assert os.environ["VIRTUAL_ENV"] == os.environ[er.ACTIVE_VAR]


def test_nested_env_run_runs_in_place():
    result = subprocess.run([os.path.join(REPO, "bin", "env-run"), "python", "-c",
                             "import os; print(os.environ['VIRTUAL_ENV'])"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == os.environ["VIRTUAL_ENV"]
