# Shared by scripts/setup and scripts/install-pi (sourced, not run): which Debian release
# this is, and its Python. Raspberry Pi OS is Debian with the Raspberry Pi archive on top:
# Bookworm (Debian 12) comes with Python 3.11, Trixie (Debian 13, since October 2025) with
# Python 3.13. Moodtale runs on Python 3.11 to 3.13.
#
# MOODTALE_OS_RELEASE and MOODTALE_RPI_ISSUE name other files to read (for the tests).

# detect_release: sets RELEASE_ID, RELEASE_CODENAME, RELEASE_VERSION, RELEASE_NAME (for
# people: "Raspberry Pi OS (Debian 13 trixie)"), RELEASE_PYTHON (the minor version the
# release ships, "" when not known) and RELEASE_KNOWN (1 for bookworm and trixie).
detect_release() {
    local file="${MOODTALE_OS_RELEASE:-/etc/os-release}" rpi="${MOODTALE_RPI_ISSUE:-/etc/rpi-issue}"
    local ID="" VERSION_ID="" VERSION_CODENAME="" PRETTY_NAME="" NAME=""
    if [[ -r "$file" ]]; then
        # shellcheck disable=SC1090
        eval "$(grep -E '^(ID|VERSION_ID|VERSION_CODENAME|PRETTY_NAME|NAME)=' "$file")"
    fi
    RELEASE_ID="${ID:-unknown}"
    RELEASE_CODENAME="${VERSION_CODENAME:-}"
    RELEASE_VERSION="${VERSION_ID:-}"
    case "$RELEASE_CODENAME" in
        bookworm) RELEASE_PYTHON=3.11; RELEASE_KNOWN=1 ;;
        trixie) RELEASE_PYTHON=3.13; RELEASE_KNOWN=1 ;;
        *) RELEASE_PYTHON=""; RELEASE_KNOWN=0 ;;
    esac
    local base="${PRETTY_NAME:-${NAME:-an unknown system}}"
    if [[ "$RELEASE_ID" == debian || "$RELEASE_ID" == raspbian ]] && [[ -n "$RELEASE_VERSION" ]]; then
        base="Debian $RELEASE_VERSION ${RELEASE_CODENAME:-}"
        base="${base% }"
    fi
    if [[ -e "$rpi" || "$RELEASE_ID" == raspbian ]]; then
        RELEASE_NAME="Raspberry Pi OS ($base)"
    else
        RELEASE_NAME="$base"
    fi
}

# python_version PYTHON: "3.13.5", or nothing when PYTHON does not run.
python_version() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

# python_fits VERSION: 3.11 or newer.
python_fits() {
    local major minor
    IFS=. read -r major minor _ <<< "$1"
    [[ -n "$major" && -n "$minor" ]] && (( major > 3 || (major == 3 && minor >= 11) ))
}

# python_tested VERSION: 3.11 to 3.13, what Moodtale is tested on.
python_tested() {
    local major minor
    IFS=. read -r major minor _ <<< "$1"
    python_fits "$1" && (( major == 3 && minor <= 13 ))
}

# release_line PYTHON: the one line that says what was found, for the first line of a
# script's output: "Raspberry Pi OS (Debian 13 trixie), aarch64, Python 3.13.5 (/usr/bin/python3)".
release_line() {
    local py="$1" version
    version="$(python_version "$py")"
    printf '%s, %s, Python %s (%s)' "$RELEASE_NAME" "$(uname -m)" "${version:-missing}" "$py"
}
