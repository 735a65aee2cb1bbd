"""The best CV row of the second batch (it finished after the product's choice was fixed), on val."""

from study import Recipe, lib, val

recipe = Recipe("blend w=0.3, whitening refit, shrinkage 0.1", photo_weight=0.3, shrinkage=0.1)
s = val(recipe)
v, a, b = (lib.metrics(s, idx) for idx in (lib.VAL_IDX, lib.HALF_A, lib.HALF_B))
print(f"| {recipe.name} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['MRR']:.3f} | {a['R@1']:.3f} | {b['R@1']:.3f} |")
