# shellcheck shell=bash
# Installs what building and testing the plugins needs beyond the Rust toolchain:
# - the wasm32-wasip2 target (rust-toolchain.toml names it; older rustups don't install it on their own);
# - componentize-py, which host/plugin-host/build.rs uses to build the Python renderer that the
#   conformance tests run.
# Sourced by scripts/test before `cargo test --workspace`; safe to source or run again (quick when done).
# It changes no options of the shell that sources it.

TETHER_COMPONENTIZE_PY_VERSION="0.25.1"

tether_setup_plugins() {
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

    if command -v rustup >/dev/null 2>&1 \
        && ! (cd "$repo" && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2); then
        echo "20-plugins: adding the wasm32-wasip2 target"
        (cd "$repo" && rustup target add wasm32-wasip2) || return 1
    fi

    local installed=""
    if command -v componentize-py >/dev/null 2>&1; then
        installed="$(componentize-py --version 2>/dev/null | awk '{print $2}')"
    fi
    if [ "$installed" != "$TETHER_COMPONENTIZE_PY_VERSION" ]; then
        echo "20-plugins: installing componentize-py $TETHER_COMPONENTIZE_PY_VERSION (found: ${installed:-none})"
        local python
        python="$(command -v python3 || command -v python)" || { echo "20-plugins: python3 is required" >&2; return 1; }
        "$python" -m pip install --quiet --disable-pip-version-check "componentize-py==$TETHER_COMPONENTIZE_PY_VERSION" || return 1
        hash -r
        if ! command -v componentize-py >/dev/null 2>&1; then
            # pip may install scripts outside PATH (e.g. ~/.local/bin for a user install).
            local scripts
            scripts="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
            export PATH="$scripts:$HOME/.local/bin:$PATH"
        fi
        command -v componentize-py >/dev/null 2>&1 || { echo "20-plugins: componentize-py is not on PATH after installing" >&2; return 1; }
    fi
}

tether_setup_plugins
