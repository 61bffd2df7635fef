"""The deployment side: the FROM-scratch runtime image and the compose/Kubernetes files.

ContainerImageTest builds the runtime image with podman from the binary under test
($GATEHOUSE_BIN) and deploy/runtime-files.sh (the same file list deploy/Dockerfile uses),
with the runtime stage of deploy/Dockerfile itself (its one `COPY --from=build` turned
into a COPY of the local root filesystem), and runs it on the host network against a
Python upstream on 127.0.0.1: non-root uid, proxying, `gatehouse healthcheck` inside the
container, drain on `podman stop`. No registry is needed. Skipped when podman is missing.

Podman runs as on deploy machines (../shared/notes/containers.md): vfs storage, runc,
cgroupfs, no default ulimits; here with its own storage, run and tmp directories and its
own containers.conf under one temporary directory, so nothing touches the host's images
and nothing is left behind.

The other classes read the files only: deploy/docker-compose.yml, deploy/k8s/*.yaml (with
PyYAML, python3-yaml), deploy/Dockerfile against scripts/setup.sh, and the configs they
mount, validated with `gatehouse check` (certificates and secrets they name are replaced
by temporary stand-ins, since only the operator has the real ones).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import tomllib
import unittest

from harness import (GATEHOUSE_BIN, HttpClient, Upstream, echo_handler, raw_request,
                     wait_for)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
RUNTIME_FILES = os.path.join(DEPLOY, "runtime-files.sh")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
COMPOSE_FILE = os.path.join(DEPLOY, "docker-compose.yml")
K8S_DIR = os.path.join(DEPLOY, "k8s")
SETUP_SCRIPT = os.path.join(REPO, "scripts", "setup.sh")

PODMAN = shutil.which("podman")
OPENSSL = shutil.which("openssl")
try:
    import yaml  # python3-yaml
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None

IMAGE_SIZE_LIMIT = 30 * 1000 * 1000  # bytes, as podman reports it
NON_ROOT_UID = 65532
DEFAULT_ADMIN_PORT = 9901  # what `gatehouse healthcheck` asks without a URL
STOP_TIMEOUT = 10          # podman stop -t
DRAIN_TIMEOUT = 5          # server.drain_timeout in the test config
# Packages scripts/setup.sh installs for tests and tools only, not for building.


def run(cmd: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command with a deadline, capturing text output; never raises on exit code."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """No one listens on 127.0.0.1:port (connections in TIME_WAIT do not count: libuv
    binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def http_get(port: int, path: str, timeout: float = 2.0):
    """(status, body) of GET path on 127.0.0.1:port, or (None, b"") when unreachable."""
    try:
        result = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close"
                                   f"\r\n\r\n".encode(), timeout=timeout)
    except OSError:
        return None, b""
    return result.status, result.body


def runtime_file_list(binary: str) -> dict[str, str]:
    out = run(["sh", RUNTIME_FILES, "list", binary], timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"runtime-files.sh list failed: {out.stderr}")
    return dict(line.split("\t", 1) for line in out.stdout.splitlines())


def dockerfile_instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, comments dropped, continuations joined."""
    instructions = []
    pending = ""
    with open(path) as f:
        for line in f:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):
                continue  # a comment line inside a continuation
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            text = pending + stripped
            pending = ""
            word, _, rest = text.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def runtime_stage(path: str) -> list[tuple[str, str]]:
    """The instructions of the final `FROM scratch` stage of a Dockerfile."""
    instructions = dockerfile_instructions(path)
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    last = starts[-1]
    if instructions[last][1].split()[0] != "scratch":
        raise AssertionError(f"the final stage of {path} is not FROM scratch")
    return instructions[last:]


def self_signed_pair(cert_path: str, key_path: str) -> None:
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    os.makedirs(os.path.dirname(key_path), exist_ok=True)
    out = run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
               "/CN=example.test", "-keyout", key_path, "-out", cert_path], timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"openssl req failed: {out.stderr}")


def check_config_with_stand_ins(test: unittest.TestCase, toml_text: str, label: str) -> None:
    """Runs `gatehouse check` on a config after pointing the certificates, password files
    and ACME webroot it names at temporary stand-ins (a self-signed pair, a dummy
    password, an empty directory): those are the operator's, not the repository's."""
    if not OPENSSL:
        test.skipTest("openssl is not installed: cannot make stand-in certificates")
    config = tomllib.loads(toml_text)
    tmp = tempfile.mkdtemp(prefix="gatehouse-deploy-check-")
    test.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    replacements: dict[str, str] = {}

    def stand_in(path: str) -> str:
        replacements[path] = os.path.join(tmp, path.lstrip("/"))
        return replacements[path]

    for listener in config.get("listener", []):
        for pair in listener.get("tls", {}).get("certificates", []):
            self_signed_pair(stand_in(pair["cert"]), stand_in(pair["key"]))
        if listener.get("acme_webroot"):
            os.makedirs(stand_in(listener["acme_webroot"]), exist_ok=True)
    for check in config.get("check", []):
        if check.get("password_file"):
            target = stand_in(check["password_file"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write("stand-in\n")
    for original, replacement in replacements.items():
        toml_text = toml_text.replace(f'"{original}"', f'"{replacement}"')
    path = os.path.join(tmp, "gatehouse.toml")
    with open(path, "w") as f:
        f.write(toml_text)
    out = run([GATEHOUSE_BIN, "check", "-c", path], timeout=30)
    test.assertEqual(out.returncode, 0, f"gatehouse check of {label} failed:\n"
                                        f"{out.stdout}{out.stderr}")


def config_file_paths(config: dict) -> list[str]:
    """Every file or directory path a config names (certificates, secrets, webroots)."""
    paths = []
    for listener in config.get("listener", []):
        tls = listener.get("tls", {})
        for pair in tls.get("certificates", []):
            paths += [pair["cert"], pair["key"]]
        if tls.get("ocsp_file"):
            paths.append(tls["ocsp_file"])
        if listener.get("acme_webroot"):
            paths.append(listener["acme_webroot"])
    paths += [c["password_file"] for c in config.get("check", []) if c.get("password_file")]
    return paths


def under(path: str, directory: str) -> bool:
    directory = directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


# --------------------------------------------------------------------------------------
# The image, built and run with podman
# --------------------------------------------------------------------------------------


class Podman:
    """podman with the deploy machines' flags and storage of its own under `root`."""

    def __init__(self, root: str):
        conf = os.path.join(root, "containers.conf")
        with open(conf, "w") as f:
            # Without default_ulimits = [] runc fails to raise RLIMIT_NOFILE/NPROC here.
            f.write("[containers]\ndefault_ulimits = []\n")
        self.env = dict(os.environ, CONTAINERS_CONF=conf, TMPDIR=os.path.join(root, "tmp"))
        os.makedirs(self.env["TMPDIR"])
        self.base = [PODMAN, "--root", os.path.join(root, "storage"),
                     "--runroot", os.path.join(root, "run"),
                     "--tmpdir", os.path.join(root, "libpod"),
                     "--storage-driver", "vfs", "--runtime", "runc",
                     "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(self.base + list(args), timeout=timeout, env=self.env)

    def must(self, *args: str, timeout: float = 60) -> str:
        out = self(*args, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({out.returncode}):\n"
                                 f"{out.stdout}{out.stderr}")
        return out.stdout


@unittest.skipUnless(PODMAN, "podman is not installed: the container image tests need "
                             "podman, buildah and runc (apt-get install podman buildah "
                             "runc); see scripts/setup.sh")
class ContainerImageTest(unittest.TestCase):
    """Builds the runtime image once, then runs one container per test."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gatehouse-container-")
        try:
            cls._build_image()
        except BaseException:
            cls._remove_everything()
            raise

    @classmethod
    def _build_image(cls):
        cls.podman = Podman(cls.tmp)
        info = cls.podman("info", "--format", "{{.Store.GraphDriverName}}", timeout=60)
        if info.returncode != 0:
            raise AssertionError("podman does not work here (see ../shared/notes/"
                                 f"containers.md):\n{info.stderr}")
        cls.tag = f"localhost/gatehouse-test:{os.getpid()}"
        cls.containers: list[str] = []
        context = os.path.join(cls.tmp, "context")
        os.makedirs(context)
        # The runtime files, from the same script and list the Dockerfile uses.
        out = run(["sh", RUNTIME_FILES, "rootfs", GATEHOUSE_BIN,
                   os.path.join(DEPLOY, "gatehouse.toml"), os.path.join(context, "rootfs")],
                  timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"runtime-files.sh rootfs failed:\n{out.stderr}")
        # The runtime stage of deploy/Dockerfile, with the root filesystem from here.
        lines = []
        for word, args in runtime_stage(DOCKERFILE):
            if word in ("COPY", "ADD"):
                if not re.fullmatch(r"--from=build\s+/rootfs/\s+/", args):
                    raise AssertionError(f"unexpected file instruction in the runtime stage "
                                         f"of deploy/Dockerfile: {word} {args}")
                args = "rootfs/ /"
            lines.append(f"{word} {args}")
        with open(os.path.join(context, "Containerfile"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # docker format: the OCI image format has no HEALTHCHECK.
        cls.podman.must("build", "--format", "docker", "--pull=never", "-t", cls.tag,
                        "-f", os.path.join(context, "Containerfile"), context, timeout=300)

    @classmethod
    def tearDownClass(cls):
        cls._remove_everything()

    @classmethod
    def _remove_everything(cls):
        podman = getattr(cls, "podman", None)
        if podman:
            commands = [("rm", "--force", "--time", "0", name)
                        for name in getattr(cls, "containers", [])]
            if getattr(cls, "tag", None):
                commands.append(("rmi", "--force", cls.tag))
            for command in commands:
                try:
                    podman(*command, timeout=60)
                except subprocess.TimeoutExpired:
                    print(f"podman {' '.join(command)} timed out")
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------

    def start(self, upstream: Upstream, *, check: bool = False) -> dict:
        """Runs the image with a config for `upstream` mounted at the default config path
        (so the image's own ENTRYPOINT and CMD start it). Returns name and ports."""
        port = free_port()
        # `gatehouse healthcheck` without a URL asks 127.0.0.1:9901; on the host network
        # that port may be taken (a developer's Gatehouse), then the URL is given.
        admin = DEFAULT_ADMIN_PORT if port_is_free(DEFAULT_ADMIN_PORT) else free_port()
        config = f"""
[server]
workers = 1
drain_timeout = "{DRAIN_TIMEOUT}s"

[[listener]]
address = "127.0.0.1:{port}"

[admin]
address = "127.0.0.1:{admin}"

[[upstream]]
name = "app"
servers = ["{upstream.address}"]

[[route]]
path_prefix = "/"
upstream = "app"
"""
        if check:
            config += """
[[check]]
name = "upstream"
type = "http"
upstream = "app"
path = "/healthz"
interval = "300ms"
timeout = "200ms"
rise = 1
fall = 1
"""
        name = f"gatehouse-test-{os.getpid()}-{len(self.containers)}"
        path = os.path.join(self.tmp, f"{name}.toml")
        with open(path, "w") as f:
            f.write(config)
        os.chmod(path, 0o644)  # read by uid 65532 in the container
        env = []
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(var):
                env += ["--env", f"{var}={os.environ[var]}"]
        self.containers.append(name)
        self.addCleanup(self.podman, "rm", "--force", "--time", "0", name)
        # As hardened as the compose file and the Kubernetes manifests run it.
        self.podman.must("run", "--detach", "--name", name, "--network", "host",
                         "--read-only", "--cap-drop", "ALL",
                         "--security-opt", "no-new-privileges", "--log-driver", "k8s-file",
                         "--volume", f"{path}:/etc/gatehouse/gatehouse.toml:ro",
                         *env, self.tag)
        ctr = {"name": name, "port": port, "admin": admin}
        ready = wait_for(lambda: http_get(admin, "/livez")[0] == 200 or not self.running(ctr),
                           timeout=30)
        self.assertTrue(ready and self.running(ctr),
                        f"the container did not come up\n{self.logs(ctr)}")
        return ctr

    def running(self, ctr: dict) -> bool:
        out = self.podman("inspect", "--format", "{{.State.Running}}", ctr["name"])
        return out.stdout.strip() == "true"

    def logs(self, ctr: dict) -> str:
        out = self.podman("logs", ctr["name"], timeout=30)
        return f"--- podman logs {ctr['name']}:\n{out.stdout}{out.stderr}"

    def healthcheck(self, ctr: dict) -> subprocess.CompletedProcess:
        """`podman exec CONTAINER /gatehouse healthcheck`: the compose healthcheck."""
        args = ["/gatehouse", "healthcheck"]
        if ctr["admin"] != DEFAULT_ADMIN_PORT:
            args.append(f"http://127.0.0.1:{ctr['admin']}/readyz")
        return self.podman("exec", ctr["name"], *args, timeout=30)

    def engine_healthcheck(self, ctr: dict) -> bool:
        """`podman healthcheck run`: the image's HEALTHCHECK, run by the engine."""
        out = self.podman("healthcheck", "run", ctr["name"], timeout=30)
        self.engine_output = f"exit {out.returncode}: {out.stdout}{out.stderr}"
        return out.returncode == 0

    def has_healthcheck_command(self) -> bool:
        out = run([GATEHOUSE_BIN, "--help"], timeout=10)
        return "healthcheck" in out.stdout + out.stderr

    # -- tests --------------------------------------------------------------------------

    def test_image_metadata_matches_the_dockerfile(self):
        config = json.loads(self.podman.must("image", "inspect", "--format",
                                             "{{json .Config}}", self.tag))
        self.assertEqual(config.get("User"), f"{NON_ROOT_UID}:{NON_ROOT_UID}")
        self.assertEqual(config.get("Entrypoint"), ["/gatehouse"])
        self.assertEqual(config.get("Cmd"), ["-c", "/etc/gatehouse/gatehouse.toml"])
        self.assertEqual(set(config.get("ExposedPorts") or {}),
                         {"8080/tcp", "8443/tcp", "9901/tcp"})
        self.assertEqual(config.get("StopSignal"), "SIGTERM")
        healthcheck = json.loads(self.podman.must("image", "inspect", "--format",
                                                  "{{json .HealthCheck}}", self.tag))
        self.assertEqual((healthcheck or {}).get("Test"), ["CMD", "/gatehouse", "healthcheck"])
        self.assertFalse([e for e in config.get("Env") or []
                          if re.search(r"PASSWORD|SECRET|TOKEN", e, re.I)])

    def test_image_holds_exactly_the_runtime_files(self):
        expected = set(runtime_file_list(GATEHOUSE_BIN))
        mounted = self.podman("image", "mount", self.tag)
        if mounted.returncode != 0:
            self.skipTest(f"podman image mount failed: {mounted.stderr.strip()}")
        self.addCleanup(self.podman, "image", "unmount", self.tag)
        root = mounted.stdout.strip()
        found = set()
        for directory, _, files in os.walk(root):
            for name in files:
                found.add("/" + os.path.relpath(os.path.join(directory, name), root))
        self.assertEqual(found, expected)
        with open(os.path.join(root, "etc", "passwd")) as f:
            self.assertIn(f"gatehouse:x:{NON_ROOT_UID}:{NON_ROOT_UID}:", f.read())
        size = int(self.podman.must("image", "inspect", "--format", "{{.Size}}", self.tag))
        print(f"\nruntime image: {size / 1e6:.1f} MB, {len(found)} files")
        libs = "\n".join(expected)
        if "libasan" in libs or "libubsan" in libs:
            return  # a sanitizer build carries its runtime; the limit is for the release
        self.assertLessEqual(size, IMAGE_SIZE_LIMIT, f"image is {size} bytes")

    def test_runs_as_non_root_and_proxies(self):
        upstream = Upstream(echo_handler, name="host-upstream")
        self.addCleanup(upstream.close)
        ctr = self.start(upstream)
        pid = self.podman.must("inspect", "--format", "{{.State.Pid}}", ctr["name"]).strip()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        uids = status["Uid"].split()
        gids = status["Gid"].split()
        self.assertEqual(uids, [str(NON_ROOT_UID)] * 4, "the proxy must not run as root")
        self.assertEqual(gids, [str(NON_ROOT_UID)] * 4)
        self.assertEqual(status["CapEff"].strip(), "0" * 16, "no effective capabilities")

        with HttpClient(ctr["port"]) as client:
            response = client.request("GET", "/from/the/host?x=1")
        self.assertEqual(response.status, 200, self.logs(ctr))
        self.assertEqual(response.headers.get("X-Upstream"), "host-upstream")
        self.assertEqual(response.headers.get("X-Target"), "/from/the/host?x=1")
        self.assertTrue(upstream.wait_for_requests(1))
        forwarded = upstream.requests[0].headers.get("X-Forwarded-For")
        self.assertEqual(forwarded, "127.0.0.1")

    def test_healthcheck_follows_the_upstream_check(self):
        if not self.has_healthcheck_command():
            self.skipTest("this gatehouse has no `healthcheck` subcommand yet")
        upstream = Upstream(echo_handler, name="host-upstream")
        self.addCleanup(upstream.close)
        ctr = self.start(upstream, check=True)

        ok = wait_for(lambda: self.healthcheck(ctr).returncode == 0, timeout=20, interval=0.5)
        result = self.healthcheck(ctr)
        self.assertTrue(ok, f"healthcheck never passed: {result.stdout}{result.stderr}\n"
                            f"{self.logs(ctr)}")
        self.assertEqual(result.returncode, 0)
        # The image's HEALTHCHECK as the engine runs it (docker does the same every 10s);
        # it asks the default 127.0.0.1:9901, so only when the container has that port.
        engine_checks = ctr["admin"] == DEFAULT_ADMIN_PORT
        if engine_checks:
            engine = wait_for(lambda: self.engine_healthcheck(ctr), timeout=10, interval=0.5)
            self.assertTrue(engine, f"podman healthcheck run: {self.engine_output}")
        else:
            print(f"\n127.0.0.1:{DEFAULT_ADMIN_PORT} is taken on this host: the image's "
                  "HEALTHCHECK (default URL) is not run")

        status, body = http_get(ctr["admin"], "/readyz")
        if b"upstream" not in body:
            self.skipTest("/readyz does not list the [[check]]s yet (it answered "
                          f"{status} {body!r}): cannot test that healthcheck fails when "
                          "the upstream is down")
        upstream.close()  # connection refused from now on
        failed = wait_for(lambda: self.healthcheck(ctr).returncode == 1, timeout=20,
                            interval=0.5)
        result = self.healthcheck(ctr)
        self.assertTrue(failed, f"healthcheck kept passing with the upstream down: "
                                f"{result.returncode} {result.stdout}{result.stderr}")
        if engine_checks:
            self.assertFalse(self.engine_healthcheck(ctr), self.engine_output)

    def test_stop_drains_and_exits_zero(self):
        def handler(request, conn):
            if request.target.startswith("/slow"):
                conn.upstream.pause(1.5)
            echo_handler(request, conn)

        upstream = Upstream(handler, name="host-upstream")
        self.addCleanup(upstream.close)
        ctr = self.start(upstream)
        results = {}

        def slow_request():
            try:
                with HttpClient(ctr["port"], timeout=STOP_TIMEOUT + 5) as client:
                    results["response"] = client.request("GET", "/slow")
            except Exception as error:  # reported by the assertion below
                results["error"] = error

        client = threading.Thread(target=slow_request, daemon=True)
        client.start()
        self.assertTrue(upstream.wait_for_heads(1, timeout=5), self.logs(ctr))
        started = time.monotonic()
        stop = self.podman("stop", "--time", str(STOP_TIMEOUT), ctr["name"],
                           timeout=STOP_TIMEOUT + 30)
        elapsed = time.monotonic() - started
        client.join(timeout=STOP_TIMEOUT + 10)
        self.assertEqual(stop.returncode, 0, stop.stderr)
        exit_code = self.podman.must("inspect", "--format", "{{.State.ExitCode}}",
                                     ctr["name"]).strip()
        self.assertEqual(exit_code, "0", f"exit code {exit_code} after {elapsed:.1f}s "
                                         f"(137 = killed: SIGTERM not handled)\n"
                                         f"{self.logs(ctr)}")
        self.assertLess(elapsed, DRAIN_TIMEOUT + 2, "stop waited past the drain timeout")
        self.assertNotIn("error", results, results.get("error"))
        self.assertEqual(results["response"].status, 200, "the in-flight request was cut")


# --------------------------------------------------------------------------------------
# The files: Dockerfile, compose, Kubernetes
# --------------------------------------------------------------------------------------


class DockerfileTest(unittest.TestCase):
    def test_build_stage_installs_the_build_packages_of_setup_sh(self):
        with open(SETUP_SCRIPT) as f:
            match = re.search(r"^build_packages=\(\s*(.*?)\)", f.read(), re.S | re.M)
        self.assertIsNotNone(match, "no build_packages=( ... ) in scripts/setup.sh")
        wanted = set(match.group(1).split())
        installs = " ".join(args for word, args in dockerfile_instructions(DOCKERFILE)
                            if word == "RUN" and "apt-get install" in args)
        installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", installs))
        self.assertFalse(wanted - installed,
                         "scripts/setup.sh installs build packages deploy/Dockerfile does "
                         "not (test-only packages belong in test_packages)")
        self.assertIn("ca-certificates", installed)

    def test_default_config_passes_gatehouse_check(self):
        """The config baked into the image (the build stage checks it too)."""
        with open(os.path.join(DEPLOY, "gatehouse.toml")) as f:
            check_config_with_stand_ins(self, f.read(), "deploy/gatehouse.toml")

    def test_stages(self):
        instructions = dockerfile_instructions(DOCKERFILE)
        args = {a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in instructions
                if w == "ARG" and "=" in a}
        froms = [a for w, a in instructions if w == "FROM"]
        self.assertEqual(len(froms), 2)
        self.assertEqual(froms[0], "${BUILD_IMAGE} AS build")
        self.assertRegex(args["BUILD_IMAGE"], r"debian:bookworm[-\w]*-slim@sha256:[0-9a-f]{64}$")
        self.assertIn("-DGATEHOUSE_TESTS=OFF",
                      " ".join(a for w, a in instructions if w == "RUN"))
        stage = runtime_stage(DOCKERFILE)
        got = {w: a for w, a in stage}
        self.assertEqual(got["USER"], f"{NON_ROOT_UID}:{NON_ROOT_UID}")
        self.assertEqual(json.loads(got["ENTRYPOINT"]), ["/gatehouse"])
        self.assertEqual(json.loads(got["CMD"]), ["-c", "/etc/gatehouse/gatehouse.toml"])
        self.assertEqual(got["EXPOSE"].split(), ["8080", "8443", "9901"])
        self.assertEqual(got["STOPSIGNAL"], "SIGTERM")
        self.assertTrue(got["HEALTHCHECK"].endswith('CMD ["/gatehouse", "healthcheck"]'))
        for word, text in instructions:
            if word in ("ARG", "ENV"):
                self.assertNotRegex(text, r"(?i)password|secret|token",
                                    "no secrets in build args or image env")


@unittest.skipIf(yaml, "PyYAML is installed: ComposeFileTest reads the compose file")
class ComposeSyntaxWithoutYamlTest(unittest.TestCase):
    """Without PyYAML: at least let podman-compose parse the compose file."""

    def test_podman_compose_config(self):
        tool = shutil.which("podman-compose")
        if not tool:
            self.skipTest("neither PyYAML (python3-yaml) nor podman-compose is installed: "
                          "the compose and Kubernetes files are not checked")
        if not re.search(r"\bconfig\b", run([tool, "--help"], timeout=30).stdout):
            self.skipTest("PyYAML (python3-yaml) is not installed and this podman-compose "
                          "has no `config` command (1.0.3, Debian 12's, has none): the "
                          "compose and Kubernetes files are not checked")
        env = dict(os.environ, DB_PASSWORD="x", AUTH_SECRET="x", APP_URL="https://x")
        out = run([tool, "-f", COMPOSE_FILE, "config"], timeout=60, cwd=DEPLOY, env=env)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


@unittest.skipUnless(yaml, "PyYAML (python3-yaml) is not installed: skipping the "
                           "compose file checks")
class ComposeFileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(COMPOSE_FILE) as f:
            cls.compose = yaml.safe_load(f)
        cls.services = cls.compose["services"]

    def host_path(self, relative: str) -> str:
        return os.path.normpath(os.path.join(DEPLOY, relative))

    def assert_provided(self, path: str, what: str) -> None:
        """`path` (relative to deploy/) exists, or is a file the operator provides: its
        directory exists in deploy/ and has a README.md naming it."""
        full = self.host_path(path)
        if os.path.exists(full):
            return
        directory = os.path.dirname(full)
        readme = os.path.join(directory, "README.md")
        documented = False
        if os.path.isfile(readme):
            with open(readme) as f:
                documented = os.path.basename(full) in f.read()
        self.assertTrue(os.path.isdir(directory) and documented,
                        f"{what}: {path} does not exist in deploy/ (an operator-provided "
                        f"file needs its directory and a README.md naming it)")

    def mounts(self, service: dict) -> list[tuple[str, str]]:
        """(host path relative to deploy/, container path) of the bind mounts."""
        mounts = []
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type") == "bind":
                    mounts.append((volume["source"], volume["target"]))
                continue
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                mounts.append((source, target))
        return mounts

    def test_every_referenced_file_exists(self):
        for name, service in self.services.items():
            build = service.get("build")
            if build:
                context = build if isinstance(build, str) else build.get("context", ".")
                self.assertTrue(os.path.isdir(self.host_path(context)), f"{name}: context")
                if isinstance(build, dict) and build.get("dockerfile"):
                    dockerfile = os.path.join(self.host_path(context), build["dockerfile"])
                    self.assertTrue(os.path.isfile(dockerfile), f"{name}: {dockerfile}")
                    self.assertTrue(under(os.path.normpath(dockerfile), DEPLOY))
            for source, _ in self.mounts(service):
                self.assertFalse(source.startswith("/"), f"{name}: absolute host path")
                self.assert_provided(source, f"{name} volume")
            env_files = service.get("env_file", [])
            for env_file in [env_files] if isinstance(env_files, str) else env_files:
                self.assert_provided(env_file, f"{name} env_file")
        for name, secret in self.compose.get("secrets", {}).items():
            if "file" in secret:
                self.assert_provided(secret["file"], f"secret {name}")
        self.assertTrue(os.path.isfile(os.path.join(DEPLOY, ".env.example")))

    def test_gatehouse_service(self):
        gatehouse = self.services["gatehouse"]
        self.assertEqual(gatehouse["healthcheck"]["test"], ["CMD", "/gatehouse", "healthcheck"])
        published = [str(p) for p in gatehouse["ports"]]
        self.assertIn("80:8080", published)
        self.assertIn("443:8443", published)
        for port in published:
            if port.endswith(":9901"):
                self.assertTrue(port.startswith("127.0.0.1:"), "admin must not be public")
        mounts = self.mounts(gatehouse)
        config_mounts = [s for s, t in mounts if t == "/etc/gatehouse/gatehouse.toml"]
        self.assertEqual(len(config_mounts), 1, "config mounted at the image's CMD path")
        for volume in gatehouse["volumes"]:
            self.assertTrue(str(volume).endswith(":ro"), f"{volume}: mount read-only")
        with open(self.host_path(config_mounts[0]), "rb") as f:
            config = tomllib.load(f)
        # Every path the config names is inside something mounted into the container.
        targets = [t for _, t in mounts] + [f"/run/secrets/{s if isinstance(s, str) else s['source']}"
                                             for s in gatehouse.get("secrets", [])]
        for path in config_file_paths(config):
            self.assertTrue(any(under(path, t) for t in targets),
                            f"{path} in the compose config is not mounted into gatehouse")
        drain = int(re.fullmatch(r"(\d+)s", config["server"]["drain_timeout"]).group(1))
        grace = int(re.fullmatch(r"(\d+)s", gatehouse["stop_grace_period"]).group(1))
        self.assertGreater(grace, drain, "docker stop would kill Gatehouse mid-drain")
        self.assertNotIn("container_name", gatehouse)

    def test_app_replicas_and_dependencies(self):
        app = self.services["app"]
        self.assertGreaterEqual(app.get("deploy", {}).get("replicas", 1), 2)
        self.assertNotIn("container_name", app, "replicas cannot share a container name")
        self.assertNotIn("ports", app, "only Gatehouse is published")
        for name, service in self.services.items():
            self.assertIn("restart", service, name)
            logging = service.get("logging", {})
            self.assertEqual(logging.get("driver"), "json-file", name)
            self.assertIn("max-size", logging.get("options", {}), name)
            self.assertIn("max-file", logging.get("options", {}), name)
            depends = service.get("depends_on", {})
            for dependency, condition in (depends.items() if isinstance(depends, dict) else []):
                self.assertIn(dependency, self.services)
                if condition.get("condition") == "service_healthy":
                    self.assertIn("healthcheck", self.services[dependency],
                                  f"{name} waits for {dependency} to be healthy")

    def test_compose_config_passes_gatehouse_check(self):
        source = [s for s, t in self.mounts(self.services["gatehouse"])
                  if t == "/etc/gatehouse/gatehouse.toml"][0]
        with open(self.host_path(source)) as f:
            check_config_with_stand_ins(self, f.read(), source)


@unittest.skipUnless(yaml, "PyYAML (python3-yaml) is not installed: skipping the "
                           "Kubernetes manifest checks")
class KubernetesManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(K8S_DIR, "kustomization.yaml")) as f:
            cls.kustomization = yaml.safe_load(f)
        cls.objects = []
        for resource in cls.kustomization["resources"]:
            path = os.path.join(K8S_DIR, resource)
            if os.path.isfile(path):
                with open(path) as f:
                    cls.objects += [d for d in yaml.safe_load_all(f) if d]

    def named(self, kind: str) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    def test_kustomization_lists_every_manifest(self):
        listed = set(self.kustomization["resources"])
        for resource in listed:
            self.assertTrue(os.path.isfile(os.path.join(K8S_DIR, resource)), resource)
        present = {f for f in os.listdir(K8S_DIR) if f.endswith((".yaml", ".yml"))}
        self.assertEqual(present - {"kustomization.yaml"}, listed)

    def test_deployment(self):
        deployment = self.named("Deployment")["gatehouse"]
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        self.assertGreaterEqual(spec["replicas"], 2)
        self.assertEqual(spec["selector"]["matchLabels"].items() -
                         spec["template"]["metadata"]["labels"].items(), set())
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["runAsUser"], NON_ROOT_UID)
        [container] = pod["containers"]
        security = container["securityContext"]
        self.assertTrue(security["readOnlyRootFilesystem"])
        self.assertFalse(security["allowPrivilegeEscalation"])
        self.assertIn("requests", container["resources"])
        self.assertIn("limits", container["resources"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/livez")
        self.assertIn("startupProbe", container)
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            self.assertEqual(ports.get(container[probe]["httpGet"]["port"]), 9901, probe)

        # Every volume refers to a ConfigMap/Secret defined here; every mount to a volume.
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container["volumeMounts"]:
            self.assertIn(mount["name"], volumes)
        for volume in volumes.values():
            if "configMap" in volume:
                self.assertIn(volume["configMap"]["name"], self.named("ConfigMap"))
            if "secret" in volume:
                self.assertIn(volume["secret"]["secretName"], self.named("Secret"))

        # The config lands where the image's CMD reads it, and what it names is mounted.
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        config_volume = mounts["/etc/gatehouse"]
        configmap = self.named("ConfigMap")[config_volume["configMap"]["name"]]
        self.assertIn("gatehouse.toml", configmap["data"])
        config = tomllib.loads(configmap["data"]["gatehouse.toml"])
        for path in config_file_paths(config):
            self.assertTrue(any(under(path, m) for m in mounts), f"{path} is not mounted")
        drain = int(re.fullmatch(r"(\d+)s", config["server"]["drain_timeout"]).group(1))
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})
        self.assertGreater(pod["terminationGracePeriodSeconds"],
                           drain + pre_stop.get("seconds", 0))
        # Several replicas: Socket.IO stickiness must not depend on per-process state.
        for route in config["route"]:
            self.assertNotEqual(route.get("sticky"), "socketio",
                                "several Gatehouse replicas need sticky = \"cookie\"")

    def test_services_target_named_ports(self):
        deployment = self.named("Deployment")["gatehouse"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        names = {p["name"] for p in container["ports"]}
        service = self.named("Service")["gatehouse"]
        self.assertEqual(service["spec"]["selector"].items() - labels.items(), set())
        for port in service["spec"]["ports"]:
            self.assertIn(port["targetPort"], names)
            self.assertNotEqual(port["targetPort"], "admin", "admin stays private")

    def test_configmap_config_passes_gatehouse_check(self):
        configmap = self.named("ConfigMap")["gatehouse-config"]
        check_config_with_stand_ins(self, configmap["data"]["gatehouse.toml"],
                                    "deploy/k8s/configmap.yaml")


if __name__ == "__main__":
    unittest.main()
