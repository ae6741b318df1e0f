# Shared by scripts/check-boot and scripts/check-distro (sourced, not run): a minimal
# Debian root built with debootstrap from the Debian archive this machine's apt already
# uses (read at run time; no host name is written anywhere), for this machine's
# architecture or, through Debian's qemu-user-static and binfmt_misc, another one.
#
# Expects say() and die() from the sourcing script.

# The Debian packages every root gets: enough to boot it with systemd, clone, fetch and run
# Python; the scripts under test install the rest themselves.
DEBIAN_ROOT_PACKAGES=systemd,systemd-sysv,dbus,ca-certificates,git,curl,sqlite3,procps,python3,python3-venv

host_arch() { dpkg --print-architecture 2>/dev/null || echo amd64; }

# The qemu interpreter binfmt_misc names for ARCH ("" for the host's own architecture).
qemu_for() {
    case "$1" in
        "$(host_arch)") echo "" ;;
        arm64) echo aarch64 ;;
        armhf) echo arm ;;
        *) die "no emulation set up for architecture '$1' (amd64 or arm64)" ;;
    esac
}

# The tools: debootstrap, systemd-nspawn, git; for a foreign architecture qemu-user-static
# with binfmt_misc mounted and its entry enabled. Installed with apt when missing.
debian_root_tools() {
    local arch="$1" qemu need=()
    qemu="$(qemu_for "$arch")"
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v systemd-nspawn >/dev/null || need+=(systemd-container)
    command -v git >/dev/null || need+=(git)
    if [[ -n "$qemu" ]]; then
        command -v "qemu-$qemu-static" >/dev/null || need+=(qemu-user-static binfmt-support)
    fi
    if (( ${#need[@]} )); then
        say "installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need[@]}" >/dev/null
    fi
    if [[ -n "$qemu" ]]; then
        [[ -e /proc/sys/fs/binfmt_misc/register ]] \
            || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        update-binfmts --enable "qemu-$qemu" >/dev/null 2>&1 || true
        [[ "$(head -1 "/proc/sys/fs/binfmt_misc/qemu-$qemu" 2>/dev/null)" == enabled ]] \
            || die "binfmt_misc has no enabled qemu-$qemu entry: $arch binaries cannot run here"
    fi
}

# The Debian archive this machine's apt uses.
debian_mirror() {
    local mirror
    mirror="$(apt-get indextargets --format '$(REPO_URI) $(LABEL)' 2>/dev/null \
        | awk '$2 == "Debian" { print $1; exit }')"
    [[ -n "$mirror" ]] || die "this machine's apt has no Debian archive to build a root from"
    printf '%s\n' "$mirror"
}

# The emulator where the kernel looks for it: binfmt_misc entries without the F flag (as
# Debian registers them) resolve the interpreter's path inside the root.
put_emulator_in() {
    local root="$1" qemu="$2" interp
    [[ -n "$qemu" ]] || return 0
    interp="$(sed -n 's/^interpreter //p' "/proc/sys/fs/binfmt_misc/qemu-$qemu")"
    install -D -m 0755 "$(command -v "qemu-$qemu-static")" "$root/usr/bin/qemu-$qemu-static"
    if [[ -n "$interp" && "$interp" != "/usr/bin/qemu-$qemu-static" ]]; then
        install -d "$root$(dirname "$interp")"
        ln -sf "/usr/bin/qemu-$qemu-static" "$root$interp"
    fi
}

# build_base SUITE ARCH BASE LOG [--fresh]: debootstrap a root into BASE once (a stamp
# marks it done; --fresh builds it again). A foreign architecture is built in two stages,
# the second run inside the root through the emulator.
build_base() {
    local suite="$1" arch="$2" base="$3" log="$4" fresh="${5:-}" qemu mirror t0
    if [[ -z "$fresh" && -f "$base/.moodtale-base-done" ]]; then return 0; fi
    qemu="$(qemu_for "$arch")"
    mirror="$(debian_mirror)"
    t0=$(date +%s)
    say "building a Debian $suite $arch root (debootstrap; log: $log)"
    rm -rf "$base"
    if [[ -z "$qemu" ]]; then
        debootstrap --variant=minbase --arch="$arch" --include="$DEBIAN_ROOT_PACKAGES" \
            "$suite" "$base" "$mirror" > "$log" 2>&1 || die "debootstrap failed; see $log"
    else
        debootstrap --foreign --variant=minbase --arch="$arch" \
            --include="$DEBIAN_ROOT_PACKAGES" "$suite" "$base" "$mirror" > "$log" 2>&1 \
            || die "debootstrap (first stage) failed; see $log"
        put_emulator_in "$base" "$qemu"
        chroot "$base" /debootstrap/debootstrap --second-stage >> "$log" 2>&1 \
            || die "debootstrap (second stage, emulated) failed; see $log"
    fi
    # apt inside the root fetches from the same archive debootstrap used.
    touch "$base/.moodtale-base-done"
    say "root built in $(( $(date +%s) - t0 )) s"
}

# fresh_root BASE ROOT: a copy of the base to install into (what is proven is a first
# install), carrying this machine's CA bundle (a registry proxy's CA, say) in its own.
fresh_root() {
    local base="$1" root="$2"
    rm -rf "$root"
    cp -a "$base" "$root"
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        install -D -m 0644 /etc/ssl/certs/ca-certificates.crt \
            "$root/usr/local/share/ca-certificates/check-host.crt"
        chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
    fi
}
