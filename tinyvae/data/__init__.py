"""The data: image files, checked downloads, and the data sets the commands train on.

Reading order: idx (the IDX file format of MNIST), download (official mirrors, checksums,
atomic files), loading (MNIST, Fashion-MNIST and the bundled UCI digits of datasets/, as uint8,
with the float conversion and binarization done one batch at a time).
"""

from tinyvae._moved import old_names

__getattr__ = old_names(__name__)          # old paths, kept for one release: tinyvae.data.load_dataset, ...
