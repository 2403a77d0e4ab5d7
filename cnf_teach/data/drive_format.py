"""DRIVE's folder layout and file formats: reading, validating and writing a split, and downscaling it.

DRIVE (Staal et al. 2004) holds 40 colour fundus photographs of 584x565 pixels, 20 for
training and 20 for testing, each with a manual vessel segmentation and a mask of the
circular field of view (FOV); the test images have a second, independent manual
segmentation, which gives a "human observer" point to compare models against. The
official layout, which :func:`read_drive_split` reads and :func:`write_drive_split` writes::

    training/images/NN_training.tif      training/1st_manual/NN_manual1.gif
    training/mask/NN_training_mask.gif
    test/images/NN_test.tif              test/1st_manual/NN_manual1.gif
    test/2nd_manual/NN_manual2.gif       test/mask/NN_test_mask.gif

Labels and masks are read in any two-level encoding (0/255 or 0/1 grey images, palette
GIFs with levels such as 3 and 253, as some mirrors distribute them): the two levels are
separated at their mid-level. Every problem with a file (missing, misnamed, unreadable,
wrong size, a label with more than two levels) raises :class:`DriveFormatError`, a
``ValueError`` whose one-line message names the file.

This file knows files and NumPy arrays only (:class:`DriveImage`); it is its own module so
that the format can be read, checked and tested without the tensors, padding and device
batches built on it (:mod:`cnf_teach.data.drive`, :mod:`cnf_teach.data.drive_loader`).
Every name here is also importable from :mod:`cnf_teach.data.drive`.

References:
    Staal, Abramoff, Niemeijer, Viergever, van Ginneken. Ridge-based vessel
    segmentation in color images of the retina. IEEE TMI 23(4), 2004.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "DRIVE_SHAPE",
    "SPLITS",
    "DriveFormatError",
    "DriveImage",
    "read_drive_split",
    "write_drive_split",
    "drive_summary",
    "downscale_image",
]

#: Height and width of a DRIVE photograph.
DRIVE_SHAPE = (584, 565)
#: The two splits and the suffix of their image files.
SPLITS = {"training": "training", "test": "test"}

_IMAGE_RE = re.compile(r"^(\d+)_(training|test)\.tif$")


class DriveFormatError(ValueError):
    """A DRIVE folder or file is missing, misnamed, unreadable or malformed (the message names it).

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.drive import DriveFormatError, read_drive_split
        >>> issubclass(DriveFormatError, ValueError)
        True
        >>> with tempfile.TemporaryDirectory() as root:
        ...     read_drive_split(root, "training")
        Traceback (most recent call last):
        ...
        cnf_teach.data.drive_format.DriveFormatError: missing folder ...images; expected DRIVE's layout training/...
    """


@dataclass
class DriveImage:
    """One photograph with its annotations, as arrays in the file's own size.

    Attributes:
        name: The two-digit id, e.g. ``"21"``.
        image: RGB photograph, ``[H, W, 3]`` uint8.
        label: First manual segmentation, ``[H, W]`` uint8 in {0, 1}.
        mask: Field-of-view mask, ``[H, W]`` uint8 in {0, 1}.
        label2: Second manual segmentation (test split only), or ``None``.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> from cnf_teach.data.drive import DriveImage, read_drive_split, write_drive_split
        >>> photo = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        >>> im = DriveImage("21", photo, label=np.eye(8, dtype=np.uint8), mask=np.ones((8, 8), np.uint8))
        >>> with tempfile.TemporaryDirectory() as root:
        ...     write_drive_split(root, "training", [im])
        ...     back = read_drive_split(root, "training")[0]
        >>> back.name, back.image.shape, back.label2 is None
        ('21', (8, 8, 3), True)
        >>> np.array_equal(back.image, photo), np.array_equal(back.label, im.label)
        (True, True)
    """

    name: str
    image: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    label2: np.ndarray | None = None


def _paths(root: Path, split: str, name: str) -> dict[str, Path]:
    d = root / split
    return {
        "image": d / "images" / f"{name}_{SPLITS[split]}.tif",
        "label": d / "1st_manual" / f"{name}_manual1.gif",
        "mask": d / "mask" / f"{name}_{SPLITS[split]}_mask.gif",
        "label2": d / "2nd_manual" / f"{name}_manual2.gif",
    }


def _read(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DriveFormatError(f"missing file {path}; DRIVE needs it next to its image (see the layout in the docs)")
    try:
        with Image.open(path) as im:
            im.load()
            # GIF annotations are palette images; "L" gives the grey level each palette entry encodes.
            # 16-bit and float images ("I;16", "I", "F") keep their own levels.
            keep = ("RGB", "L", "I", "I;16", "F")
            arr = np.array(im if im.mode in keep else im.convert("L" if im.mode in ("P", "1", "LA") else "RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DriveFormatError(f"cannot read {path}: {err}; the file is corrupt or not an image") from err
    return arr


def _binary(arr: np.ndarray, path: Path) -> np.ndarray:
    """A two-level annotation as uint8 {0, 1}, thresholded at the middle of its two levels.

    DRIVE's mirrors encode the same annotations differently: 0/255 grey GIFs, 0/1 images,
    palette GIFs whose two entries are, e.g., the grey levels 3 and 253. Any image with
    exactly two levels is read as background (the darker level) and foreground (the
    lighter), i.e. thresholded at the mid-level. An image with a single level is all
    background when that level is 0 and all foreground when it is 1 or at least 128 (the
    upper half of the 8-bit range); any other single level is ambiguous and refused. More
    than two levels (a soft or lossy-compressed annotation) are refused with a one-line
    error naming the file.
    """
    if arr.ndim == 3:
        if not (arr == arr[..., :1]).all():
            raise DriveFormatError(f"{path} is a colour image; a DRIVE label or mask must be black and white")
        arr = arr[..., 0]
    values = np.unique(arr)
    if len(values) > 2:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise DriveFormatError(
            f"{path} is not binary: it holds {len(values)} levels {{{shown}}}; a label or mask must hold two levels "
            "(0/255 in DRIVE)"
        )
    if len(values) == 2:
        return (arr.astype(np.float64) > (float(values[0]) + float(values[1])) / 2).astype(np.uint8)
    level = int(values[0])
    if level == 0:
        return np.zeros(arr.shape, np.uint8)
    if level == 1 or level >= 128:
        return np.ones(arr.shape, np.uint8)
    raise DriveFormatError(
        f"{path} holds the single level {level}; cannot tell whether it is all background or all foreground "
        "(expected 0, 1 or a level of at least 128)"
    )


def read_drive_split(root: str | Path, split: str) -> list[DriveImage]:
    """Read and validate one split (``"training"`` or ``"test"``) of a DRIVE folder.

    Args:
        root: The folder that holds ``training/`` and ``test/``.
        split: ``"training"`` or ``"test"``.

    Returns:
        The images sorted by id. ``label2`` is filled when ``2nd_manual/`` exists.

    Raises:
        DriveFormatError: naming the folder or file that is missing, misnamed, corrupt
            or malformed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'training' or 'test', got {split!r}")
    root = Path(root)
    images_dir = root / split / "images"
    if not images_dir.is_dir():
        raise DriveFormatError(f"missing folder {images_dir}; expected DRIVE's layout {split}/images/NN_{split}.tif")
    names = []
    for p in sorted(images_dir.iterdir()):
        if p.name.startswith("."):
            continue
        m = _IMAGE_RE.match(p.name)
        if m is None or m.group(2) != SPLITS[split]:
            raise DriveFormatError(f"unexpected file {p}; images in {images_dir} must be named NN_{split}.tif")
        names.append(m.group(1))
    if not names:
        raise DriveFormatError(f"no images in {images_dir}; expected files named NN_{split}.tif")
    has_second = (root / split / "2nd_manual").is_dir()
    out = []
    for name in names:
        paths = _paths(root, split, name)
        image = _read(paths["image"])
        if image.ndim != 3 or image.shape[2] != 3:
            raise DriveFormatError(f"{paths['image']} has shape {image.shape}; expected an RGB image [H, W, 3]")
        if image.dtype != np.uint8:
            raise DriveFormatError(f"{paths['image']} has dtype {image.dtype}; expected 8-bit RGB")
        parts = {}
        for key in ("label", "mask", "label2") if has_second else ("label", "mask"):
            arr = _binary(_read(paths[key]), paths[key])
            if arr.shape != image.shape[:2]:
                raise DriveFormatError(
                    f"{paths[key]} is {arr.shape[0]}x{arr.shape[1]} but its image {paths['image'].name} is "
                    f"{image.shape[0]}x{image.shape[1]}; annotations must have the image's size"
                )
            parts[key] = arr
        out.append(DriveImage(name, image, parts["label"], parts["mask"], parts.get("label2")))
    shapes = {im.image.shape for im in out}
    if len(shapes) > 1:
        raise DriveFormatError(f"images in {images_dir} have different sizes {sorted(shapes)}; DRIVE's are all equal")
    return out


def write_drive_split(root: str | Path, split: str, images: list[DriveImage]) -> None:
    """Write images in DRIVE's layout and formats (RGB TIFF, 0/255 GIF annotations).

    Args:
        root: Destination folder (``root/split/...`` is created).
        split: ``"training"`` or ``"test"``.
        images: What to write; ``label2`` is written to ``2nd_manual/`` when present.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'training' or 'test', got {split!r}")
    root = Path(root)
    for sub in ("images", "1st_manual", "mask") + (
        ("2nd_manual",) if any(i.label2 is not None for i in images) else ()
    ):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    for im in images:
        paths = _paths(root, split, im.name)
        Image.fromarray(np.ascontiguousarray(im.image, dtype=np.uint8)).save(paths["image"])
        for key in ("label", "mask", "label2"):
            arr = getattr(im, key)
            if arr is not None:
                Image.fromarray((np.asarray(arr) > 0).astype(np.uint8) * 255).save(paths[key])


def drive_summary(root: str | Path) -> dict[str, dict[str, float | int]]:
    """Validate a DRIVE folder and summarise each split present.

    Returns:
        ``{"training": {"images", "height", "width", "vessel_fraction_in_fov", "fov_fraction"},
        "test": {...}}``; the vessel fraction is that of ``1st_manual`` inside the FOV.
    """
    root = Path(root)
    if not root.is_dir():
        raise DriveFormatError(f"no folder {root}")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise DriveFormatError(f"{root} has neither training/ nor test/; is it a DRIVE folder?")
    out: dict[str, dict[str, float | int]] = {}
    for split in present:
        images = read_drive_split(root, split)
        fov = sum(int(i.mask.sum()) for i in images)
        vessels = sum(int((i.label * i.mask).sum()) for i in images)
        h, w = images[0].image.shape[:2]
        out[split] = {
            "images": len(images),
            "height": h,
            "width": w,
            "vessel_fraction_in_fov": vessels / max(fov, 1),
            "fov_fraction": fov / (len(images) * h * w),
        }
    return out


def downscale_image(image: DriveImage, factor: float) -> DriveImage:
    """Shrink a photograph and its annotations by ``factor`` (2 halves each side), for CPU-sized runs.

    The new size is $\\lfloor H / f \\rfloor \\times \\lfloor W / f \\rfloor$ (292x282 for DRIVE at
    $f = 2$). The photograph is resampled with an area (box) filter; each annotation is
    area-averaged and thresholded at 1/2, so a pixel is a vessel (or inside the FOV) when at
    least half of the area it covers was.

    Args:
        image: One DRIVE photograph with its annotations.
        factor: Downscale factor, at least 1 (1 returns the image unchanged).
    """
    if factor < 1:
        raise ValueError(f"downscale factor must be >= 1 (2 halves each side), got {factor}")
    if factor == 1:
        return image
    h, w = image.image.shape[:2]
    size = (max(1, int(w / factor)), max(1, int(h / factor)))  # PIL's (width, height)

    def shrink(a: np.ndarray | None, binary: bool) -> np.ndarray | None:
        if a is None:
            return None
        if not binary:
            return np.array(Image.fromarray(a).resize(size, Image.Resampling.BOX))
        soft = np.array(Image.fromarray(a.astype(np.float32)).resize(size, Image.Resampling.BOX))
        return (soft >= 0.5).astype(np.uint8)

    return DriveImage(
        image.name,
        shrink(image.image, False),
        shrink(image.label, True),
        shrink(image.mask, True),
        shrink(image.label2, True),
    )
