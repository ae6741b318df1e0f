# Shared by scripts/setup and scripts/check-distro (sourced, not run): where the
# llama-cpp-python wheel built for a machine is kept. pip's wheel cache ignores build flags,
# so a wheel built elsewhere or with other flags could be reused; we keep our own, keyed by
# version, Python, machine and flags.

# llama_wheel_dir CACHE_HOME VERSION PYTHON_MINOR MACHINE FLAGS: the directory for that wheel.
llama_wheel_dir() {
    local key
    key="$(printf '%s|%s|%s|%s' "$2" "$3" "$4" "$5" | sha256sum | cut -c1-16)"
    printf '%s/moodtale/wheels/llama-%s\n' "$1" "$key"
}
