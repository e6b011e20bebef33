"""The reference training command: `python -m harness.workload`.

A real TensorFlow/Keras program with the field command's interface
(`src/main.py --mode search --cv_folds 3 ...`): a deterministic synthetic
dataset, threshold-based sample selection, k-fold cross-validation under
`tf.distribute.MirroredStrategy`, lifecycle events as JSON lines and an
atomically written metrics file.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GPU_MEMORY = 3  # a visible GPU has less free memory than --min-gpu-memory
