"""numba kernels, one module per family; arrays in, arrays out, no package imports."""
