import time
from study import *
t=time.time()
print(lib.HEADER.split("\n")[0])
print(lib.row("default (no learning)", val(Recipe(fit="catalog"), refs=np.array([], int))))
print(lib.row("naive (photos as images, refit)", val(Recipe())))
print(lib.row("naive, no refit (live)", val(Recipe(fit="catalog"))))
print(time.time()-t)
