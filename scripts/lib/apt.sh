# Shared by scripts/setup and scripts/install-pi (sourced, not run): apt that finishes what
# a cut left and never asks. An apt run cut short (a power cut, Ctrl-C) leaves dpkg half
# done: apt_update finishes it first; apt_install -f mends whatever it left broken, keeping
# the packages' own config files, never with a prompt.

apt_update() {
    export DEBIAN_FRONTEND=noninteractive
    dpkg --configure -a || true
    apt-get update -q
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q -f --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
