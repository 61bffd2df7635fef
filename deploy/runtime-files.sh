#!/bin/sh
# The one list of files in the Gatehouse runtime image (FROM scratch).
#
# Used by deploy/Dockerfile (build stage: `rootfs`, then the runtime stage COPYs the
# directory) and by tests/integration/test_container.py (same command on the binary built
# in this checkout), so the image and the test cannot drift apart.
#
#   runtime-files.sh list   BINARY                 print "DEST<TAB>SOURCE" per file
#                                                  (SOURCE "-" = written by this script)
#   runtime-files.sh rootfs BINARY CONFIG ROOTFS   create ROOTFS (absent or empty) with:
#
#   /gatehouse                         BINARY, stripped (GATEHOUSE_STRIP=0 keeps symbols)
#   /lib/..., /usr/lib/..., /lib64/... every shared library `ldd BINARY` resolves, at the
#                                      path ldd shows, and the dynamic loader (PT_INTERP)
#   /etc/ssl/certs/ca-certificates.crt CA bundle (Debian's ca-certificates; CA_BUNDLE=...)
#   /etc/passwd, /etc/group            root and the non-root user gatehouse (65532:65532)
#   /etc/nsswitch.conf                 hosts: files dns (so the runtime's /etc/hosts wins)
#   /etc/gatehouse/gatehouse.toml      CONFIG
#
# Nothing else: no shell, no package manager, no secrets. Libraries loaded with dlopen()
# would not be found by ldd; Gatehouse loads none (glibc 2.36 has the files and dns NSS
# modules built in, OpenSSL's default provider is built into libcrypto).
# POSIX sh: runs under Debian's dash in the build stage.
set -eu

GATEHOUSE_UID=65532
GATEHOUSE_GID=65532
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

die() {
  echo "runtime-files.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '7,19p' "$0" >&2
  exit 2
}

# Absolute paths of the shared libraries and the loader, one per line.
shared_objects() {
  binary=$1
  if ! out=$(ldd "$binary" 2>&1); then
    case $out in
      *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
      *) die "ldd $binary failed: $out" ;;
    esac
  fi
  case $out in
    *"not found"*) die "unresolved libraries for $binary:
$(printf '%s\n' "$out" | grep 'not found')" ;;
  esac
  # "libuv.so.1 => /lib/x86_64-linux-gnu/libuv.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2
  # (0x...)"; linux-vdso.so.1 has no path (the kernel provides it).
  printf '%s\n' "$out" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }' | sort -u
}

list() {
  binary=$1
  objects=$(shared_objects "$binary") || exit 1
  printf '%s\t%s\n' /gatehouse "$binary"
  for so in $objects; do printf '%s\t%s\n' "$so" "$so"; done
  printf '%s\t%s\n' /etc/ssl/certs/ca-certificates.crt "$CA_BUNDLE"
  printf '%s\t-\n' /etc/passwd /etc/group /etc/nsswitch.conf
  printf '%s\t%s\n' /etc/gatehouse/gatehouse.toml "${2:-CONFIG}"
}

rootfs() {
  binary=$1 config=$2 root=$3
  if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "$binary: not an executable file"; fi
  [ -f "$config" ] || die "$config: no such config file"
  [ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE: no CA bundle (apt-get install ca-certificates)"
  if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then die "$root: exists and is not empty"; fi
  # Read the list before creating anything, so an unresolved library fails cleanly.
  entries=$(list "$binary" "$config") || exit 1
  mkdir -p "$root"

  printf '%s\n' "$entries" | while IFS="$(printf '\t')" read -r dest src; do
    target=$root$dest
    mkdir -p "$(dirname "$target")"
    case $dest in
      /gatehouse)
        if [ "${GATEHOUSE_STRIP:-1}" != 0 ] && command -v strip >/dev/null 2>&1; then
          strip --strip-unneeded -o "$target" "$src"
          chmod 0755 "$target"
        else
          install -m 0755 "$src" "$target"
        fi ;;
      /etc/passwd)
        printf '%s\n' "root:x:0:0:root:/root:/sbin/nologin" \
          "gatehouse:x:$GATEHOUSE_UID:$GATEHOUSE_GID:gatehouse:/nonexistent:/sbin/nologin" \
          >"$target" ;;
      /etc/group)
        printf '%s\n' "root:x:0:" "gatehouse:x:$GATEHOUSE_GID:" >"$target" ;;
      /etc/nsswitch.conf)
        printf '%s\n' "passwd: files" "group: files" "hosts: files dns" >"$target" ;;
      /etc/*)
        cp -L "$src" "$target" ;;
      *)
        # A shared object: copy the file a symlink points to, under the name ldd used.
        cp -L "$src" "$target"
        chmod 0755 "$target" ;;
    esac
  done
  # Everything root-owned and world-readable; only /gatehouse and libraries executable.
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -path "$root/etc/*" -type f -exec chmod 0644 {} +
  if [ "$(id -u)" = 0 ]; then chown -R 0:0 "$root"; fi
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
  list) [ $# -eq 1 ] || usage; list "$1" ;;
  rootfs) [ $# -eq 3 ] || usage; rootfs "$1" "$2" "$3" ;;
  *) usage ;;
esac
