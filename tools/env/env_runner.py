"""Runs a command inside the environment tf-ccfrec is pinned to.

TFX 1.21 ships `ml-metadata` and `tensorflow-data-validation` only as manylinux_2_39 wheels: they need
glibc >= 2.38. On such hosts this module creates a plain virtualenv. On older Linux hosts (Debian 12,
Ubuntu 22.04), where the caller is root, it builds a Debian 13 (trixie) root filesystem once, creates
the virtualenv inside it, and runs every command there through a private mount namespace:

    unshare --mount  ->  mount --bind <repo>, <shared>, /tmp, /dev, proc  ->  chroot

Each step execs the next, so the command keeps env-run's process id: SIGTERM or SIGINT from a
supervisor (systemd, Kubernetes, `docker stop`, `kill`) reaches the command itself, and its exit
status is env-run's. The bind mounts live in the private namespace only and vanish with the
command. The repository is
mounted at its own path, so paths on the command line mean the same thing inside and outside.
Network settings (DNS, CA certificates, pip and apt configuration) are read from the host on every
run; this file names no mirror or package index.

Everything is cached outside the repository under `$CCFREC_ENV_CACHE` (default
`$XDG_CACHE_HOME/tf-ccfrec`, else `~/.cache/tf-ccfrec`):

    rootfs-<base key>/                       Debian 13 rootfs (key: suite and apt packages)
    rootfs-<base key>/opt/ccfrec/venv-<key>  virtualenv inside it (key: requirements + python)
    venv-<key>/                              virtualenv on a modern host
    locks/<name>.lock                        flock: builders exclusive, users shared

Environment variables:
    CCFREC_ENV          auto (default) | venv | rootfs | host (run in the current Python as is)
    CCFREC_ENV_CACHE    cache directory
    CCFREC_ENV_BIND     extra host paths to mount inside the rootfs, separated by ':'
    CCFREC_DEBIAN_MIRROR  Debian mirror for the rootfs when the host's apt sources name none

Usage: python3 -m tools.env.env_runner [--info | --setup | --rebuild] [--] [CMD ...]

Only the standard library is used, and only what Python 3.7 has: this file runs on the host's
Python before anything is installed.
"""

import argparse
import fcntl
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

# tools/env/env_runner.py: the repository is two levels up.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUIREMENTS_DIR = os.path.join(REPO, "requirements")
# Installed together, resolved under constraints.txt.
REQUIREMENT_FILES = ("base.txt", "test.txt")
# Installed afterwards with --no-deps.
NODEPS_FILE = "nodeps.txt"
# The full set of versions the suite passed with, per Python (`make lock` writes it). Where the
# environment's Python has none, pip resolves from the top-level pins alone.
CONSTRAINTS_FILE = "constraints-py{major}{minor}.txt"

ROOTFS_SUITE = "trixie"
ROOTFS_PYTHON = (3, 13)  # Debian 13's python3
ROOTFS_PACKAGES = ("g++", "python3-dev", "python3-venv", "ca-certificates")
# glibc of the oldest manylinux wheel the stack needs (ml-metadata 1.21: manylinux_2_39 needs 2.38+).
MIN_GLIBC = (2, 38)
SUPPORTED_PYTHONS = ((3, 10), (3, 11), (3, 12), (3, 13))
# Bump when the layout of what this file builds changes, so old caches are not reused.
LAYOUT_VERSION = "1"
# Bumped when what a venv holds besides the requirements changes (3: the compat start-up hook).
VENV_LAYOUT_VERSION = "3"
ACTIVE_VAR = "CCFREC_ENV_ACTIVE"

# Host files carried into the rootfs at run time: name resolution, CA certificates, pip and apt
# configuration. Missing ones are skipped.
HOST_CONFIG_PATHS = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/ssl/certs",
    "/etc/pip.conf",
    "/etc/xdg/pip",
    "/etc/apt/apt.conf.d",
    "/etc/apt/auth.conf.d",
)
# Variables that would point the rootfs Python at the host's installation.
HOST_ONLY_VARS = ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYENV_VERSION", "PYENV_ROOT",
                  "CONDA_PREFIX", "LD_LIBRARY_PATH")


class EnvError(RuntimeError):
    """A step of setting up or entering the environment failed; the message says how to retry."""


def log(message):
    sys.stderr.write("[env-run] %s\n" % message)
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Pure decisions (unit-tested).

def parse_glibc_version(text):
    """'2.36' or 'glibc 2.38' -> (2, 36); None when no version is found."""
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def choose_mode(system, glibc, is_root, requested="auto"):
    """Which environment to use.

    Args:
      system: platform.system(), e.g. 'Linux'.
      glibc: (major, minor) of the host's C library, or None when it is not glibc.
      is_root: whether the caller may create mount namespaces and chroot.
      requested: CCFREC_ENV: 'auto', 'venv', 'rootfs' or 'host'.

    Returns:
      'venv', 'rootfs' or 'host'.

    Raises:
      EnvError: when no environment can work on this host.
    """
    if requested not in ("auto", "venv", "rootfs", "host"):
        raise EnvError("CCFREC_ENV=%r: use auto, venv, rootfs or host" % requested)
    if requested == "host":
        return "host"
    if system != "Linux":
        raise EnvError("tf-ccfrec's pinned stack needs Linux x86-64 (this is %s); install the "
                       "package yourself and set CCFREC_ENV=host" % system)
    modern = glibc is not None and glibc >= MIN_GLIBC
    if requested == "venv" or (requested == "auto" and modern):
        if not modern:
            raise EnvError("CCFREC_ENV=venv needs glibc >= %d.%d (this host has %s)"
                           % (MIN_GLIBC + (_version_text(glibc),)))
        return "venv"
    if not is_root:
        raise EnvError("this host's glibc %s is older than %d.%d, which TFX 1.21's wheels need; "
                       "building a Debian 13 environment for it needs root (run as root, use a "
                       "host with glibc >= %d.%d, or install the stack yourself and set "
                       "CCFREC_ENV=host)" % ((_version_text(glibc),) + MIN_GLIBC + MIN_GLIBC))
    return "rootfs"


def _version_text(version):
    return "unknown" if version is None else "%d.%d" % tuple(version)


def debian_mirror_from_sources(texts):
    """The first Debian archive URI in apt source files (one-line or deb822 format).

    Security and updates archives are skipped: the rootfs needs the main archive.

    Args:
      texts: contents of /etc/apt/sources.list and /etc/apt/sources.list.d/* files.

    Returns:
      A URI such as 'http://mirror.example/debian', or None.
    """
    for text in texts:
        for block in re.split(r"\n\s*\n", text):
            lines = [l for l in block.splitlines() if l.strip() and not l.lstrip().startswith("#")]
            fields = {}
            for line in lines:
                one_line = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if one_line:
                    uri, suite = one_line.group(2), one_line.group(3)
                    if _is_debian_main(uri, suite.split()):
                        return uri.rstrip("/")
                    continue
                key, sep, value = line.partition(":")
                if sep and not line[:1].isspace():
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                suites = fields.get("suites", "").split()
                for uri in fields.get("uris", "").split():
                    if _is_debian_main(uri, suites):
                        return uri.rstrip("/")
    return None


def _is_debian_main(uri, suites):
    if "security" in uri or not re.search(r"/debian/?$", uri):
        return False
    return any("-" not in s and "/" not in s for s in suites)


PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf",
                    "~/.pip/pip.conf")
PIP_PATH_OPTIONS = ("find-links", "index-url", "extra-index-url", "constraint", "cert",
                    "client-cert")


def pip_local_paths(config_texts, env):
    """Local files and directories that pip's configuration refers to.

    pip reads options from config files (`key = value` under any section) and from PIP_<KEY>
    variables; values are whitespace-separated lists of paths or URLs. Those that are local
    (absolute paths, file:// URLs) must be visible inside the rootfs for pip to behave as on the
    host. A local index `<dir>/simple` links to files outside itself, so `<dir>` is named instead.

    Args:
      config_texts: contents of the pip config files that exist.
      env: the environment variables.

    Returns:
      Absolute paths, in order of first mention, without duplicates.
    """
    values = []
    for text in config_texts:
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() in PIP_PATH_OPTIONS:
                values.append((key.strip().lower(), value))
    for option in PIP_PATH_OPTIONS:
        values.append((option, env.get("PIP_" + option.upper().replace("-", "_"), "")))
    paths = []
    for option, value in values:
        for word in value.split():
            path = word[len("file://"):] if word.startswith("file://") else word
            if not path.startswith("/"):
                continue
            path = path.rstrip("/") or "/"
            if option.endswith("index-url") and os.path.basename(path) == "simple":
                path = os.path.dirname(path)
            if path not in paths:
                paths.append(path)
    return paths


def requirements_key(files, python_tag):
    """A short hash of the requirement files' contents and the Python that installs them.

    Args:
      files: {file name: contents}.
      python_tag: e.g. 'rootfs-trixie' or 'cp311'.
    """
    digest = hashlib.sha256(("layout %s\npython %s\n" % (VENV_LAYOUT_VERSION,
                                                         python_tag)).encode())
    for name in sorted(files):
        digest.update(("== %s\n" % name).encode())
        digest.update(files[name].encode())
    return digest.hexdigest()[:16]


def rootfs_key():
    spec = "layout %s\nsuite %s\npackages %s\n" % (LAYOUT_VERSION, ROOTFS_SUITE,
                                                     " ".join(sorted(ROOTFS_PACKAGES)))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


# glibc malloc keeps TensorFlow's large, short-lived tensors in its heap (on transparent huge
# pages) instead of mapping and unmapping them: a CCFRec training step spends a third of its time
# in page faults otherwise (docs/model.md). One arena instead of one per thread (up to 8 per core)
# lets every thread reuse the same freed blocks: the paper configuration's peak RSS falls from
# 4.4 to 3.6 GiB at the same speed (the sampled preset's 5.7 -> 4.9 GiB, about 10% slower).
# A GLIBC_TUNABLES of the caller's wins.
MALLOC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:"
                   "glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1")


def inner_environment(host_env, venv, repo):
    """The variables a command sees inside the environment."""
    env = {k: v for k, v in host_env.items() if k not in HOST_ONLY_VARS}
    env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    env.update({
        "PATH": os.pathsep.join([os.path.join(venv, "bin"), "/usr/local/sbin", "/usr/local/bin",
                                 "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
        "VIRTUAL_ENV": venv,
        "PYTHONPATH": repo,
        # TFRS 0.7.7 needs Keras 2: tf.keras must resolve to tf_keras.
        "TF_USE_LEGACY_KERAS": "1",
        "PYTHONNOUSERSITE": "1",
        ACTIVE_VAR: venv,
    })
    return env


# --------------------------------------------------------------------------------------------
# Host facts.

def host_glibc():
    name, version = platform.libc_ver()
    if name != "glibc":
        try:
            out = subprocess.run(["ldd", "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True).stdout
        except OSError:
            return None
        return parse_glibc_version(out.splitlines()[0] if out else "")
    return parse_glibc_version(version)


def cache_dir():
    explicit = os.environ.get("CCFREC_ENV_CACHE")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tf-ccfrec")


def constraints_name(python):
    return CONSTRAINTS_FILE.format(major=python[0], minor=python[1])


def read_requirements(python):
    """{file name: contents} of what an environment for `python` (major, minor) installs."""
    files = {}
    constraints = constraints_name(python)
    for name in REQUIREMENT_FILES + (NODEPS_FILE, constraints):
        path = os.path.join(REQUIREMENTS_DIR, name)
        if os.path.exists(path):
            with open(path) as f:
                files[name] = f.read()
        elif name != constraints:
            raise EnvError("missing %s: the checkout is incomplete" % path)
    if constraints not in files:
        log("no %s: resolving from the top-level pins alone" % constraints)
    return files


def host_mirror():
    mirror = os.environ.get("CCFREC_DEBIAN_MIRROR")
    if mirror:
        return mirror
    texts = []
    for path in ["/etc/apt/sources.list"] + sorted(
            os.path.join("/etc/apt/sources.list.d", n) for n in _listdir("/etc/apt/sources.list.d")
            if n.endswith((".list", ".sources"))):
        try:
            with open(path) as f:
                texts.append(f.read())
        except OSError:
            pass
    mirror = debian_mirror_from_sources(texts)
    if not mirror:
        raise EnvError("no Debian mirror found in this host's apt sources; set "
                       "CCFREC_DEBIAN_MIRROR to one (e.g. the URI your apt uses for Debian)")
    return mirror


def host_pip_paths():
    """pip configuration files of the host and the local paths they (or PIP_*) name."""
    files = [os.path.expanduser(p) for p in PIP_CONFIG_FILES]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    texts = []
    for path in files:
        try:
            with open(path) as f:
                texts.append(f.read())
        except OSError:
            pass
    return [p for p in files if os.path.exists(p)] + pip_local_paths(texts, os.environ)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


# --------------------------------------------------------------------------------------------
# Locking and step running.

class Lock(object):
    """flock on <cache>/locks/<name>.lock.

    Each environment has two: `build`, held exclusively while building it (a second builder waits,
    then finds it built), and `use`, held shared by every command for its whole run (the file
    descriptor survives exec) and exclusively by --rebuild, which so never removes an environment
    from under a running command.
    """

    def __init__(self, cache, name):
        os.makedirs(os.path.join(cache, "locks"), exist_ok=True)
        self.path = os.path.join(cache, "locks", name + ".lock")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def shared(self):
        self._take(fcntl.LOCK_SH, "shared")

    def exclusive(self):
        self._take(fcntl.LOCK_EX, "exclusive")

    def _take(self, kind, word):
        try:
            fcntl.flock(self.fd, kind | fcntl.LOCK_NB)
        except OSError:
            log("waiting for %s lock %s (another env-run is building or using it)"
                % (word, self.path))
            fcntl.flock(self.fd, kind)

    def release(self):
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def keep_across_exec(self):
        os.set_inheritable(self.fd, True)


def run_step(title, argv, retry_hint, env=None):
    log(title)
    started = time.time()
    result = subprocess.run(argv, env=env)
    if result.returncode != 0:
        raise EnvError("%s failed (exit %d). %s" % (title, result.returncode, retry_hint))
    log("  done in %.0f s" % (time.time() - started))


def pip_install_argv(pip, req_dir, files, python):
    argv = [pip, "install", "--progress-bar", "off"]
    for name in REQUIREMENT_FILES:
        argv += ["-r", os.path.join(req_dir, name)]
    if constraints_name(python) in files:
        argv += ["-c", os.path.join(req_dir, constraints_name(python))]
    return argv


def write_startup_hook(venv):
    """Puts tools/env/startup_hook.py's .pth into the venv (host path): every Python of the
    environment, Beam's worker processes included, then runs tf_ccfrec.compat first."""
    import glob

    from tools.env import startup_hook

    sites = glob.glob(os.path.join(venv, "lib", "python*", "site-packages"))
    if not sites:
        raise EnvError("%s has no site-packages" % venv)
    for site in sites:
        startup_hook.install(site)


def write_requirements(req_dir, files):
    os.makedirs(req_dir, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(req_dir, name), "w") as f:
            f.write(text)


# --------------------------------------------------------------------------------------------
# Modern host: a plain virtualenv.

class VenvEnvironment(object):
    def __init__(self, cache, files):
        self.cache = cache
        self.files = files
        self.key = requirements_key(files, "venv-%d.%d" % sys.version_info[:2])
        self.venv = os.path.join(cache, "venv-" + self.key)
        self.build_lock = Lock(cache, "venv-%s.build" % self.key)
        self.use_lock = Lock(cache, "venv-%s.use" % self.key)

    def ready(self):
        return os.path.exists(os.path.join(self.venv, ".complete"))

    def build(self):
        if sys.version_info[:2] not in SUPPORTED_PYTHONS:
            raise EnvError("python3 here is %d.%d; the stack supports 3.10-3.13: run env-run "
                           "with a supported python3" % sys.version_info[:2])
        hint = ("Check the network and the host's pip configuration, then rerun; the partial "
                "environment %s is rebuilt from scratch." % self.venv)
        shutil.rmtree(self.venv, ignore_errors=True)
        run_step("creating virtualenv %s" % self.venv,
                 [sys.executable, "-m", "venv", self.venv], hint)
        req_dir = os.path.join(self.venv, "requirements")
        write_requirements(req_dir, self.files)
        pip = os.path.join(self.venv, "bin", "pip")
        run_step("pip: installing the pinned stack (about 3 minutes)",
                 pip_install_argv(pip, req_dir, self.files, sys.version_info[:2]), hint)
        run_step("pip: installing %s with --no-deps" % NODEPS_FILE,
                 [pip, "install", "--no-deps", "-r", os.path.join(req_dir, NODEPS_FILE)], hint)
        write_startup_hook(self.venv)
        open(os.path.join(self.venv, ".complete"), "w").close()

    def remove_venv(self):
        shutil.rmtree(self.venv, ignore_errors=True)

    def exec_argv(self, argv, cwd):
        return argv, inner_environment(os.environ, self.venv, REPO)

    def describe(self):
        return {"mode": "venv", "venv": self.venv, "key": self.key}


# --------------------------------------------------------------------------------------------
# Old host: a Debian 13 rootfs entered through a private mount namespace.

class RootfsEnvironment(object):
    INNER_VENV_DIR = "/opt/ccfrec"

    def __init__(self, cache, files):
        self.cache = cache
        self.files = files
        self.rootfs = os.path.join(cache, "rootfs-" + rootfs_key())
        self.key = requirements_key(files, "rootfs-" + ROOTFS_SUITE)
        self.venv = "%s/venv-%s" % (self.INNER_VENV_DIR, self.key)  # path inside the rootfs
        # One pair for the rootfs and the virtualenvs inside it.
        self.build_lock = Lock(cache, "rootfs-%s.build" % rootfs_key())
        self.use_lock = Lock(cache, "rootfs-%s.use" % rootfs_key())

    def _host(self, inner):
        return self.rootfs + inner

    def ready(self):
        return (os.path.exists(self._host("/.ccfrec-rootfs-complete"))
                and os.path.exists(self._host(self.venv + "/.complete")))

    def build(self):
        if not os.path.exists(self._host("/.ccfrec-rootfs-complete")):
            self._build_rootfs()
        if not os.path.exists(self._host(self.venv + "/.complete")):
            self._build_venv()

    def _build_rootfs(self):
        if not shutil.which("debootstrap") and shutil.which("apt-get"):
            run_step("apt-get: installing debootstrap on the host",
                     ["/bin/sh", "-c", "apt-get update -q && apt-get install -y -q "
                      "--no-install-recommends debootstrap debian-archive-keyring"],
                     "Install debootstrap yourself (apt-get install debootstrap), then rerun.",
                     env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        for tool in ("debootstrap", "unshare", "chroot", "mount"):
            if not shutil.which(tool):
                raise EnvError("%s is not on PATH; install it (debootstrap, util-linux, coreutils) "
                               "and rerun" % tool)
        mirror = host_mirror()
        staging = self.rootfs + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        hint = ("Check the network and the host's apt configuration, then rerun; the partial "
                "rootfs %s is removed first." % staging)
        run_step("debootstrap: Debian %s minbase from %s into %s (about 1 minute)"
                 % (ROOTFS_SUITE, mirror, staging),
                 ["debootstrap", "--variant=minbase", "--include=ca-certificates", ROOTFS_SUITE,
                  staging, mirror], hint)
        with open(os.path.join(staging, "etc/apt/sources.list"), "w") as f:
            f.write("deb %s %s main\n" % (mirror, ROOTFS_SUITE))
        apt = ("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
               "--no-install-recommends %s && apt-get clean" % " ".join(ROOTFS_PACKAGES))
        run_step("apt: %s (about 1 minute)" % " ".join(ROOTFS_PACKAGES),
                 self._enter_argv(staging, ["/bin/sh", "-c", apt], "/", bind_repo=False),
                 hint, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        open(os.path.join(staging, ".ccfrec-rootfs-complete"), "w").close()
        shutil.rmtree(self.rootfs, ignore_errors=True)
        os.rename(staging, self.rootfs)

    def _build_venv(self):
        host_venv = self._host(self.venv)
        hint = ("Check the network and the host's pip configuration, then rerun; the partial "
                "environment %s is rebuilt from scratch." % host_venv)
        shutil.rmtree(host_venv, ignore_errors=True)
        os.makedirs(os.path.dirname(host_venv), exist_ok=True)
        req_dir = self.venv + "/requirements"
        pip = self.venv + "/bin/pip"
        inner_env = inner_environment(os.environ, self.venv, REPO)
        run_step("creating virtualenv %s inside the rootfs" % self.venv,
                 self._enter_argv(self.rootfs, ["python3", "-m", "venv", self.venv], "/",
                                  bind_repo=False), hint, env=inner_env)
        write_requirements(self._host(req_dir), self.files)
        run_step("pip: installing the pinned stack inside the rootfs (about 3 minutes)",
                 self._enter_argv(self.rootfs, pip_install_argv(pip, req_dir, self.files, ROOTFS_PYTHON), "/",
                                  bind_repo=False), hint, env=inner_env)
        run_step("pip: installing %s with --no-deps" % NODEPS_FILE,
                 self._enter_argv(self.rootfs, [pip, "install", "--no-deps", "-r",
                                                req_dir + "/" + NODEPS_FILE], "/",
                                  bind_repo=False), hint, env=inner_env)
        write_startup_hook(host_venv)
        open(self._host(self.venv + "/.complete"), "w").close()

    def remove_venv(self):
        shutil.rmtree(self._host(self.venv), ignore_errors=True)

    def bind_paths(self, cwd):
        """Host paths mounted at the same path inside the rootfs."""
        paths = [REPO, "/tmp"]
        shared = os.path.join(os.path.dirname(REPO), "shared")
        if os.path.isdir(shared):
            paths.append(shared)
        extra = os.environ.get("CCFREC_ENV_BIND", "")
        paths += [p for p in extra.split(":") if p]
        if cwd != "/" and not any(_is_under(cwd, p) for p in paths):
            paths.append(cwd)
        return [os.path.realpath(p) for p in paths if os.path.exists(p)]

    def _enter_argv(self, rootfs, argv, cwd, bind_repo=True):
        """unshare + mounts + chroot, as one argv for the host."""
        q = shlex.quote
        lines = ["set -e", "R=%s" % q(rootfs),
                 "mount -t proc proc \"$R/proc\"",
                 "mount --rbind /dev \"$R/dev\"",
                 "mount --rbind /sys \"$R/sys\""]
        binds = list(HOST_CONFIG_PATHS) + host_pip_paths()
        if bind_repo:
            binds += self.bind_paths(cwd)
        for path in binds:
            if not os.path.exists(path):
                continue
            target = "\"$R\"%s" % q(path)
            if os.path.isdir(path):
                lines.append("mkdir -p %s" % target)
            else:
                lines.append("mkdir -p \"$(dirname %s)\"; [ -e %s ] || : > %s"
                             % (target, target, target))
            lines.append("mount --bind %s %s" % (q(path), target))
        lines.append("exec chroot \"$R\" /bin/sh -c 'cd \"$0\" && exec \"$@\"' %s %s"
                     % (q(cwd), " ".join(q(a) for a in argv)))
        return ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", "\n".join(lines)]

    def exec_argv(self, argv, cwd):
        return (self._enter_argv(self.rootfs, argv, cwd),
                inner_environment(os.environ, self.venv, REPO))

    def describe(self):
        return {"mode": "rootfs", "rootfs": self.rootfs, "venv": self.venv, "key": self.key}


def _is_under(path, parent):
    path, parent = os.path.realpath(path), os.path.realpath(parent)
    return path == parent or path.startswith(parent.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------

def make_environment(mode, cache):
    if mode == "venv":
        return VenvEnvironment(cache, read_requirements(sys.version_info[:2]))
    return RootfsEnvironment(cache, read_requirements(ROOTFS_PYTHON))


def main(args=None):
    parser = argparse.ArgumentParser(
        prog="env-run", description="Run a command in tf-ccfrec's pinned TFX 1.21 environment, "
        "setting it up on first use.")
    parser.add_argument("--info", action="store_true", help="print the chosen environment")
    parser.add_argument("--setup", action="store_true", help="set up only, run nothing")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild the virtualenv (in rootfs mode the rootfs is kept)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and its arguments")
    opts = parser.parse_args(args)
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not command and not (opts.info or opts.setup or opts.rebuild):
        parser.error("no command given")
    cwd = os.getcwd()
    try:
        if os.environ.get(ACTIVE_VAR):  # already inside (a nested env-run)
            mode = "host"
        else:
            mode = choose_mode(platform.system(), host_glibc(), os.geteuid() == 0,
                               os.environ.get("CCFREC_ENV", "auto"))
        if mode == "host":
            if opts.info:
                print("mode: host (%s)" % sys.executable)
            if command:
                os.execvp(command[0], command)
            return 0
        cache = cache_dir()
        env = make_environment(mode, cache)
        if opts.info:
            for key, value in sorted(env.describe().items()):
                print("%s: %s" % (key, value))
        if opts.rebuild:
            env.use_lock.exclusive()  # wait for running commands; hold others off
            env.remove_venv()
        env.use_lock.shared()
        if not env.ready():
            env.build_lock.exclusive()
            if not env.ready():  # another env-run may have built it while this one waited
                started = time.time()
                log("setting up the %s environment in %s (first use; cached afterwards)"
                    % (mode, cache))
                env.build()
                log("environment ready in %.0f s" % (time.time() - started))
            env.build_lock.release()
        if not command:
            return 0
        argv, child_env = env.exec_argv(command, cwd)
        env.use_lock.keep_across_exec()
        sys.stdout.flush()
        os.execvpe(argv[0], argv, child_env)
    except EnvError as error:
        log("error: %s" % error)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
