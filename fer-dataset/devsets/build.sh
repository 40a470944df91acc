#!/usr/bin/env bash
# Builds a dev set of real photos from its list: copies each listed image of a checkout of the
# source repository into OUT/<class>/, after checking its SHA-256, so the set is the same
# everywhere. Nothing is downloaded here and nothing is written outside OUT.
#
#   fer-dataset/devsets/build.sh LIST SOURCE_IMAGES_FOLDER OUT
#   e.g. fer-dataset/devsets/build.sh fer-dataset/devsets/muxspace_lfw.csv facial_expressions/images ../devsets/muxspace_lfw
#
# LIST is a CSV with the header `label,file,sha256` (see fer-dataset/devsets/README.md).
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 LIST SOURCE_IMAGES_FOLDER OUT" >&2
    exit 2
fi
list=$1 src=$2 out=$3
[ -f "$list" ] || { echo "error: $list: no such list" >&2; exit 1; }
[ -d "$src" ] || { echo "error: $src: no such folder (check out the source repository first)" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "error: $out exists and is not empty: choose another OUT or remove it" >&2
    exit 1
fi
head -n1 "$list" | grep -qx 'label,file,sha256' || { echo "error: $list: expected the header label,file,sha256" >&2; exit 1; }
n=0 bad=0
while IFS=, read -r label file sum; do
    case "$label" in angry|disgust|fear|happy|neutral|sad|surprise) ;; *)
        echo "error: $list: unknown label '$label' for $file" >&2; exit 1 ;;
    esac
    case "$file" in */*|.*|'') echo "error: $list: '$file' is not a plain file name" >&2; exit 1 ;; esac
    if [ ! -f "$src/$file" ]; then
        echo "missing: $src/$file" >&2; bad=$((bad + 1)); continue
    fi
    got=$(sha256sum "$src/$file" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        echo "changed: $src/$file (SHA-256 $got, listed $sum)" >&2; bad=$((bad + 1)); continue
    fi
    mkdir -p "$out/$label"
    cp "$src/$file" "$out/$label/$file"
    n=$((n + 1))
done < <(tail -n +2 "$list")
echo "$n images in $out"
if [ "$bad" -gt 0 ]; then
    echo "error: $bad listed image(s) missing or changed: the set is not the listed one" >&2
    exit 1
fi
