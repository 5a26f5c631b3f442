"""The names of the files a run folder and an export folder hold, declared once, in a module
that imports nothing (the server of ``cnnkeras serve`` starts without TensorFlow)."""

CONFIG_FILE = "config.json"  # the record of a training run (train)
PREPROCESS_FILE = "preprocess.json"  # the record of an export (export)
LABELS_FILE = "labels.txt"  # class names, one a line, in output order
SPLITS_FILE = "splits.json"  # the split a run trained on (train; export copies it)
BATCH_FILE = "train_batch.png"  # the first training step's images as the model sees them
