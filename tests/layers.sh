# Dependencies point one way. The layers above the runtime (search/, db/,
# export/ on top of db/) include only their own headers, those of the layers
# below them, the families' (families/), the shared helpers (common/) and
# the public header: never a private header of kernels/ or runtime/. A
# family's rules reach them through its descriptor. Fails naming each
# include that breaks the rule.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bad=0 n=0
below() { case "$1" in export) echo db ;; esac; }
for layer in search export db; do
  for f in "$ROOT/$layer"/*.c "$ROOT/$layer"/*.h; do
    while IFS= read -r inc; do
      n=$((n + 1))
      case "$inc" in moetune/moetune.h) continue ;; esac
      found=
      for d in "$layer" $(below "$layer") families common; do
        [ -f "$ROOT/$d/$inc" ] && found=$d
      done
      if [ -z "$found" ]; then
        where=$(cd "$ROOT" && ls kernels/*/"$inc" runtime/"$inc" tuner/"$inc" 2>/dev/null | head -1)
        echo "FAIL: ${f#"$ROOT"/} includes \"$inc\" (${where:-not found}): not its own layer, families/ or common/"
        bad=$((bad + 1))
      fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
# the GPU vendors' host code: CUDA's may use HIP's (one driver table serves
# both), HIP's never CUDA's; what both need is in kernels/gpu
for f in "$ROOT"/kernels/hip/*.c "$ROOT"/kernels/hip/*.h; do
  while IFS= read -r inc; do
    n=$((n + 1))
    if [ -f "$ROOT/kernels/cuda/$inc" ]; then
      echo "FAIL: ${f#"$ROOT"/} includes \"$inc\" of kernels/cuda: a cycle between the vendors (shared code goes to kernels/gpu)"
      bad=$((bad + 1))
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
# the header search path must not hide it: families/, common/ and
# kernels/gpu are not where other kernels/ or runtime/ headers live
for h in "$ROOT"/families/*.h "$ROOT"/common/*.h "$ROOT"/kernels/gpu/*.h; do
  b=$(basename "$h")
  for d in kernels/cpu kernels/cuda kernels/hip runtime; do
    [ -f "$ROOT/$d/$b" ] && { echo "FAIL: $b is both in ${h#"$ROOT"/} and $d"; bad=$((bad + 1)); }
  done
done
echo "$n includes checked, $bad break the layering"
[ "$bad" = 0 ] && [ "$n" -gt 20 ]
