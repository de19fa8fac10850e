"""Datasets: what they look like, how they are read from their published formats, and batched.

    specs     DatasetSpec: shapes, class counts and sizes (no file access)
    readers   load_dataset: IDX (Fashion-MNIST), CIFAR pickles, the Tiny ImageNet tree
    batching  stratified subsets, batched augmentation and normalisation, BatchLoader
"""
