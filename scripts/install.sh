#!/bin/sh
# banger installer (docs/releases.md):
#   curl -fsSL https://releases.banger.dev/banger/install.sh | sh
#
# Everything that touches the network, and the signature and checksum
# checks, runs as you in a temporary directory. Only then does it say, in
# plain words, what it will change, ask (on /dev/tty, so it works through a
# pipe), and use sudo for the copy alone. POSIX sh; needs curl, openssl,
# sha256sum.
#
#   --version V     install release V (default: the newest)
#   --yes, -y       do not ask (also BANGER_INSTALL_NONINTERACTIVE=1)
#   --prefix DIR    install under DIR (default /usr/local)
#   --url URL       release server (default $BANGER_RELEASE_URL or the one below)
set -eu

URL=${BANGER_RELEASE_URL:-https://releases.banger.dev/banger}
PREFIX=/usr/local
VERSION=
YES=
[ "${BANGER_INSTALL_NONINTERACTIVE:-}" = 1 ] && YES=1

# The release key: the same public key banger is built with
# (data/release-key.pub.pem; a test checks they match).
RELEASE_KEY='-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz75e1LdGRtDAtm7eQCzsw3l7BDHA
18cdjjJIWlZYvxCMwasC3IrI4WWnpIXEopx5g6gwfJpJzb+OLqTHmmPlRg==
-----END PUBLIC KEY-----'

say() { printf '%s\n' "$*"; }
die() { printf 'banger install: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -eu/p' "$0" 2>/dev/null | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' || true
}

while [ $# -gt 0 ]; do
	case $1 in
	--version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift 2 ;;
	--version=*) VERSION=${1#*=}; shift ;;
	--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift 2 ;;
	--prefix=*) PREFIX=${1#*=}; shift ;;
	--url) [ $# -ge 2 ] || die "--url needs a value"; URL=$2; shift 2 ;;
	--url=*) URL=${1#*=}; shift ;;
	--yes|-y) YES=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
URL=${URL%/}
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path" ;; esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || PREFIX=/

for tool in curl openssl sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (Debian: apt-get install $tool)"
done

valid_version() {
	case $1 in
	'' | *[!0-9A-Za-z.+-]* | *..* | [!0-9]*) return 1 ;;
	esac
	[ ${#1} -le 64 ]
}

fetch() { curl -fsSL --retry 2 -o "$2" "$1" || die "cannot download $1"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/banger-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- download and verify, unprivileged ----
if [ -z "$VERSION" ]; then
	fetch "$URL/latest" "$TMP/latest"
	VERSION=$(head -n 1 "$TMP/latest" | tr -d ' \t\r')
	valid_version "$VERSION" || die "$URL/latest does not hold a release version"
else
	valid_version "$VERSION" || die "'$VERSION' is not a release version (like 0.3.0)"
fi
curl -fsSL -o "$TMP/manifest.json" "$URL/$VERSION/manifest.json" 2>/dev/null ||
	die "there is no release $VERSION at $URL"
fetch "$URL/$VERSION/manifest.json.sig" "$TMP/manifest.json.sig"
printf '%s\n' "$RELEASE_KEY" >"$TMP/release-key.pem"
openssl dgst -sha256 -verify "$TMP/release-key.pem" -signature "$TMP/manifest.json.sig" \
	"$TMP/manifest.json" >/dev/null 2>&1 ||
	die "the manifest of release $VERSION is not signed by the banger release key: refusing it"

# The manifest is signed: its shape is ours (docs/releases.md). One file
# object per line, then each field.
tr -d '\n\r' <"$TMP/manifest.json" >"$TMP/flat"
field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"; }
mversion=$(sed 's/"files".*//' "$TMP/flat" | field version)
march=$(sed 's/"files".*//' "$TMP/flat" | field arch)
[ "$mversion" = "$VERSION" ] || die "the manifest at $URL/$VERSION is for release '$mversion', not $VERSION"
[ "$march" = "$(uname -m)" ] || die "release $VERSION is built for $march, this host is $(uname -m)"
sed 's/.*"files"[[:space:]]*:[[:space:]]*\[//; s/\][[:space:]]*}[[:space:]]*$//' "$TMP/flat" | tr '}' '\n' >"$TMP/entries"

: >"$TMP/plan"
mkdir "$TMP/stage"
while IFS= read -r entry; do
	case $entry in *'"path"'*) ;; *) continue ;; esac
	path=$(printf '%s' "$entry" | field path)
	sha=$(printf '%s' "$entry" | field sha256)
	size=$(printf '%s' "$entry" | field size)
	mode=$(printf '%s' "$entry" | field mode)
	case /$path/ in
	*/../* | */./* | *//* | *[!A-Za-z0-9._+/-]* | */.banger-update*) die "manifest: file path '$path' is not clean" ;;
	esac
	case $path in /* | '') die "manifest: file path '$path' is not relative" ;; esac
	case $mode in [0-7][0-7][0-7] | 0[0-7][0-7][0-7]) ;; *) die "manifest: file $path has mode '$mode'" ;; esac
	case $size in '' | *[!0-9]*) die "manifest: file $path has no size" ;; esac
	mkdir -p "$TMP/stage/$(dirname "$path")"
	fetch "$URL/$VERSION/$path" "$TMP/stage/$path"
	got=$(sha256sum "$TMP/stage/$path" | cut -d' ' -f1)
	[ "$got" = "$sha" ] || die "$path: sha256 mismatch (expected $sha, got $got): refusing the release"
	[ "$(wc -c <"$TMP/stage/$path" | tr -d ' ')" = "$size" ] || die "$path: not $size bytes as the manifest says"
	chmod "$mode" "$TMP/stage/$path"
	printf '%s %s\n' "$mode" "$path" >>"$TMP/plan"
done <"$TMP/entries"
[ -s "$TMP/plan" ] || die "the manifest of release $VERSION lists no files"

# ---- say what will change ----
if [ "$(id -u)" = 0 ]; then
	SUDO='' how="as root (you are root already: no sudo)"
elif [ -d "$PREFIX" ] && [ -w "$PREFIX" ] && { [ ! -e "$PREFIX/bin" ] || [ -w "$PREFIX/bin" ]; }; then
	SUDO='' how="as you ($PREFIX is writable by you: no sudo)"
else
	command -v sudo >/dev/null 2>&1 || die "installing into $PREFIX needs root, and sudo is not installed: run this script as root"
	SUDO=sudo how="as root, through sudo (it may ask for your password)"
fi

say "banger $VERSION is downloaded and verified: the manifest is signed by the banger release key"
say "and every file matches its checksum."
say ""
say "To install it, this script will, $how:"
say "  - copy these files into $PREFIX:"
newdirs=
while read -r mode path; do
	if [ -e "$PREFIX/$path" ]; then what="replaces the file there now"; else what="new"; fi
	say "      $PREFIX/$path  ($what)"
	d=$(dirname "$PREFIX/$path")
	while [ ! -d "$d" ]; do
		case " $newdirs " in *" $d "*) ;; *) newdirs="$newdirs $d" ;; esac
		d=$(dirname "$d")
	done
done <"$TMP/plan"
[ -z "$newdirs" ] || say "  - create the directories:$newdirs"
if grep -q '\.so' "$TMP/plan" && command -v ldconfig >/dev/null 2>&1; then
	LDCONFIG=1
	say "  - run ldconfig, so programs find the banger library"
else
	LDCONFIG=
fi
say "It installs no service and starts or stops nothing: banger starts its daemon, bangerd, when you"
say "first use it (an older bangerd still running is replaced then; running VMs keep running)."
say "Nothing else on this system changes. Later updates: banger update."
say ""

if [ -z "$YES" ]; then
	if ! (exec </dev/tty) 2>/dev/null; then # a subshell: a failed redirection ends only it
		die "no terminal to ask on: rerun with --yes (or BANGER_INSTALL_NONINTERACTIVE=1) to install without asking"
	fi
	printf 'Install banger %s into %s? [y/N] ' "$VERSION" "$PREFIX" >/dev/tty
	read -r answer </dev/tty || answer=
	case $answer in
	y | Y | yes | YES | Yes) ;;
	*) say "nothing was installed"; exit 1 ;;
	esac
fi

# ---- install: the only privileged step ----
while read -r mode path; do
	dst=$PREFIX/$path
	$SUDO mkdir -p "$(dirname "$dst")"
	$SUDO cp "$TMP/stage/$path" "$dst.banger-new"
	$SUDO chmod "$mode" "$dst.banger-new"
	$SUDO mv -f "$dst.banger-new" "$dst"
done <"$TMP/plan"
[ -z "$LDCONFIG" ] || $SUDO ldconfig
say "installed banger $VERSION into $PREFIX; try: banger doctor"
