//! Datasets: Fashion-MNIST/MNIST (IDX) and CIFAR-10 (binary) loaders; owned by the train side.
