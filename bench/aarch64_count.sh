#!/usr/bin/env bash
# Instructions per inference on aarch64 (the Raspberry Pi's ISA), int8 runtime against tract's
# float ONNX, counted exactly under qemu-aarch64 (user mode) with the TCG plugin the QEMU
# Cortex-M7 test uses (firmware/qemu/plugin/insn_count.c: it prints the total at exit).
#
# Each engine runs twice, `edge-cli bench --engine E --runs 1` and `--runs 21` (10 warm-up
# inferences first in both): the difference of the two totals is exactly 20 inferences, so
# start-up, model loading and tract's planning cancel out. Release build, as a Pi user runs it.
# No Pi here: an instruction count is not a time (NEON and scalar instructions differ in cost),
# but the same ISA and the same binaries a Pi would run.
#
#   bench/aarch64_count.sh        # needs gcc-aarch64-linux-gnu, qemu-user and a C compiler
#
# Not part of CI: the release build of tract for aarch64 alone takes about 10 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fer-edge/target}
cargo build --release -p edge-cli --target aarch64-unknown-linux-gnu
bin="$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release/edge-cli"
plugin="$CARGO_TARGET_DIR/libinsn_count_user.so"
cc -shared -fPIC -O2 -o "$plugin" firmware/qemu/plugin/insn_count.c

total() { # cpu engine runs -> total guest instructions of one edge-cli run
  qemu-aarch64 -cpu "$1" -L /usr/aarch64-linux-gnu -plugin "$plugin" -d plugin \
    "$bin" bench --engine "$2" --runs "$3" 2>&1 >/dev/null | awk '/^total/ {print $2}'
}

# `max` has the Armv8.2 dot product (as a Pi 5's Cortex-A76): the int8 runtime uses SDOT.
# `cortex-a72` (a Pi 4) has not: the int8 runtime uses its NEON SMLAL kernels.
echo "| CPU model | int8 instructions per inference | tract | int8 / tract |"
echo "|---|---:|---:|---:|"
for cpu in max cortex-a72; do
  declare -A per=()
  for engine in int8 tract; do
    a=$(total "$cpu" "$engine" 1)
    b=$(total "$cpu" "$engine" 21)
    if [ -z "$a" ] || [ -z "$b" ]; then
      echo "no instruction total from qemu-aarch64 for $engine (does this qemu-user load plugins?)" >&2
      exit 1
    fi
    per[$engine]=$(((b - a) / 20))
  done
  awk -v c="$cpu" -v i="${per[int8]}" -v t="${per[tract]}" \
    'BEGIN { printf "| %s | %d | %d | %.3f |\n", c, i, t, i / t }'
done
