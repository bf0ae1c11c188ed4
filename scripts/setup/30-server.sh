# shellcheck shell=bash
# What tether-server's tests need beyond the Rust toolchain: Debian's git, whose `git daemon` and
# `git http-backend` serve the test repositories (git:// and smart HTTP). protoc needs nothing: the
# `protoc-bin-vendored` build-dependency of tether-rpc ships it.
# Sourced by scripts/test before the tests; safe to source or run again. It changes no shell options.

tether_setup_server() {
    local exec_path
    if ! command -v git >/dev/null 2>&1; then
        echo "30-server: installing git"
        if [ "$(id -u)" = 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null || return 1
        else
            sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null || return 1
        fi
    fi
    exec_path="$(git --exec-path)" || return 1
    for program in git-daemon git-http-backend; do
        if [ ! -x "$exec_path/$program" ]; then
            echo "30-server: $exec_path/$program is missing (Debian's git package ships it)" >&2
            return 1
        fi
    done
}

tether_setup_server
