"""The DRIVE retinal-vessel data set: reading, validating, padding and writing its folder layout.

DRIVE (Staal et al. 2004) holds 40 colour fundus photographs of 584x565 pixels, 20 for
training and 20 for testing, each with a manual vessel segmentation and a mask of the
circular field of view (FOV); the test images have a second, independent manual
segmentation, which gives a "human observer" point to compare models against. The
official layout, which :func:`read_drive_split` reads and :func:`write_drive_split` writes::

    training/images/NN_training.tif      training/1st_manual/NN_manual1.gif
    training/mask/NN_training_mask.gif
    test/images/NN_test.tif              test/1st_manual/NN_manual1.gif
    test/2nd_manual/NN_manual2.gif       test/mask/NN_test_mask.gif

The conditional flow needs height and width divisible by $2^L$; Winkler et al. 2019
(§5.2) pad every image to 1024x1024. :func:`pad_image` pads at the centre (so that
rotations keep the disc inside the canvas) and :func:`crop_back` undoes it.

On a GPU, :class:`DeviceDriveLoader` keeps the padded split on the device (20 images of
1024x1024 are about 0.5 GB in float32) and augments each batch there, instead of warping
1024x1024 images on the CPU item by item.

Labels and masks are read in any two-level encoding (0/255 or 0/1 grey images, palette
GIFs with levels such as 3 and 253, as some mirrors distribute them): the two levels are
separated at their mid-level. Every problem with a file (missing, misnamed, unreadable,
wrong size, a label with more than two levels) raises :class:`DriveFormatError`, a
``ValueError`` whose one-line message names the file.

References:
    Staal, Abramoff, Niemeijer, Viergever, van Ginneken. Ridge-based vessel
    segmentation in color images of the retina. IEEE TMI 23(4), 2004.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.

Length: over 300 lines; DRIVE's layout, its file formats, the dataset and the device loader
belong to one data set. A later split (reader / dataset / loader) would be natural.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..utils import process_share
from .augment import warp_batch

__all__ = [
    "DRIVE_SHAPE",
    "SPLITS",
    "DriveFormatError",
    "DriveImage",
    "DriveDataset",
    "DeviceDriveLoader",
    "read_drive_split",
    "write_drive_split",
    "drive_summary",
    "pad_image",
    "crop_back",
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
        cnf_teach.data.drive.DriveFormatError: missing folder ...images; expected DRIVE's layout training/images/NN_...
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
    except (OSError, SyntaxError, ValueError) as err:
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


def pad_image(t: Tensor, size: tuple[int, int], value: float = 0.0) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad ``[..., H, W]`` at the centre to ``size``.

    Returns:
        The padded tensor and the crop box ``(top, left, H, W)`` for :func:`crop_back`.
    """
    height, width = t.shape[-2:]
    if height > size[0] or width > size[1]:
        raise ValueError(f"cannot pad a {height}x{width} image to the smaller {size[0]}x{size[1]}; raise the pad size")
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    pads = (left, size[1] - width - left, top, size[0] - height - top)
    return torch.nn.functional.pad(t, pads, value=value), (top, left, height, width)


def crop_back(t: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """Undo :func:`pad_image`: ``[..., P, P] -> [..., H, W]``."""
    top, left, height, width = box
    return t[..., top : top + height, left : left + width]


def _pad_size(shape: tuple[int, int], pad_to: int | tuple[int, int] | None, multiple: int) -> tuple[int, int]:
    if pad_to is None:
        return tuple(-(-s // multiple) * multiple for s in shape)  # round up to the multiple
    size = (pad_to, pad_to) if isinstance(pad_to, int) else tuple(pad_to)
    if size[0] % multiple or size[1] % multiple:
        raise ValueError(f"pad size {size} must be divisible by {multiple} (2**levels of the flow)")
    return size


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


class DriveDataset(Dataset):
    """A DRIVE split as tensors, padded for the flow, with optional downscaling, cropping and augmentation.

    Each item is a dict: ``x`` ``[3, P, P]`` float in [0, 1], ``y`` and ``mask``
    ``[1, P, P]`` float in {0, 1}, ``box`` (the crop box as a ``[4]`` long tensor),
    and ``y2`` when the split has a second grader. Padding is zeros (background,
    outside the FOV).

    For training on a CPU, ``downscale`` shrinks every image once when the split is read
    (:func:`downscale_image`) and ``crop`` makes each item a random ``crop`` x ``crop``
    window of the padded (and augmented) image; evaluation uses whole images (``crop=None``).

    Args:
        root: The DRIVE folder.
        split: ``"training"`` or ``"test"``.
        pad_to: Pad size (1024 in the paper), or ``None`` to round up to ``multiple``.
        multiple: Height and width must be divisible by this ($2^L$).
        augment: Optional ``fn(x, y, mask, generator) -> (x, y, mask)`` applied after
            padding (e.g. :class:`cnf_teach.data.augment.JointAugment`).
        seed: Seed of a private random generator for the augmentation and the crops;
            ``None`` (default) draws from PyTorch's global generator, which the training
            engine saves in its checkpoints (so a resumed run sees the same augmentations).
        downscale: Shrink factor applied when reading (1: the original 584x565; 2: 292x282).
        crop: Side of a random square window taken from each item (divisible by
            ``multiple``), or ``None`` for whole images. In a crop, ``box`` covers the whole window.

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.drive import DriveDataset
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
        >>> config = RetinaConfig(height=20, width=18)
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = make_synthetic_drive(root, num_train=2, num_test=0, config=config, mc_samples=0)
        ...     dataset = DriveDataset(root, "training", multiple=8)
        >>> len(dataset), dataset.size
        (2, (24, 24))
        >>> item = dataset[0]
        >>> item["x"].shape, item["y"].shape, item["box"].tolist()  # padded at the centre; box = (top, left, H, W)
        (torch.Size([3, 24, 24]), torch.Size([1, 24, 24]), [2, 3, 20, 18])
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        pad_to: int | tuple[int, int] | None = None,
        multiple: int = 4,
        augment: Callable[..., tuple[Tensor, Tensor, Tensor]] | None = None,
        seed: int | None = None,
        downscale: float = 1.0,
        crop: int | None = None,
    ) -> None:
        if crop is not None and (crop < multiple or crop % multiple):
            raise ValueError(f"crop {crop} must be a positive multiple of {multiple} (2**levels of the flow)")
        self.images = [downscale_image(im, downscale) for im in read_drive_split(root, split)]
        self.split = split
        self.downscale = downscale
        self.crop = crop
        self.size = _pad_size(self.images[0].image.shape[:2], pad_to, multiple)
        if crop is not None:
            self.size = (max(self.size[0], crop), max(self.size[1], crop))
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __len__(self) -> int:
        return len(self.images)

    def _window(self) -> tuple[int, int]:
        """The top-left corner of a random ``crop`` x ``crop`` window of the padded canvas."""
        top = int(torch.randint(0, self.size[0] - self.crop + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, self.size[1] - self.crop + 1, (1,), generator=self.generator))
        return top, left

    def padded(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None, tuple[int, int, int, int]]:
        """Item ``index`` padded, before augmentation and cropping: ``(x, y, mask, y2 or None, box)``."""
        im = self.images[index]
        x = torch.from_numpy(im.image).permute(2, 0, 1).float() / 255.0  # [3, H, W]
        y = torch.from_numpy(im.label)[None].float()  # [1, H, W]
        mask = torch.from_numpy(im.mask)[None].float()
        x, box = pad_image(x, self.size)
        y, _ = pad_image(y, self.size)
        mask, _ = pad_image(mask, self.size)
        y2 = pad_image(torch.from_numpy(im.label2)[None].float(), self.size)[0] if im.label2 is not None else None
        return x, y, mask, y2, box

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        x, y, mask, y2, box = self.padded(index)
        if self.augment is not None:
            x, y, mask = self.augment(x, y, mask, self.generator)
        if self.crop is not None:
            top, left = self._window()
            window = (top, left, self.crop, self.crop)
            x, y, mask = (crop_back(t, window) for t in (x, y, mask))
            y2 = crop_back(y2, window) if y2 is not None else None
            box = (0, 0, self.crop, self.crop)
        item = {"x": x, "y": y, "mask": mask, "box": torch.tensor(box)}
        if y2 is not None:
            item["y2"] = y2
        return item


class DeviceDriveLoader:
    """Batches of a :class:`DriveDataset` kept on ``device`` and augmented there.

    The padded images are stacked on the device once; each batch is gathered, warped by
    ``dataset.augment`` (which needs a ``batch`` method, as
    :class:`cnf_teach.data.augment.JointAugment` has) and cropped on the device. The random
    numbers are drawn item by item in the order :meth:`DriveDataset.__getitem__` draws them
    (the map, then the crop window) from the dataset's generator, so a batch equals the
    default-collated items of a ``DataLoader`` over the same dataset, indices and generator
    state (up to floating-point rounding on a GPU).

    It looks like the ``DataLoader`` the training engine expects: it has ``__len__``, a
    ``generator`` for the shuffling (saved in checkpoints, so resumes are exact) and, under
    ``torch.distributed`` or ``torchrun``, each process takes its own share of every epoch's
    order. The share is known from ``torchrun``'s environment before the process group is
    joined, so ``len(loader)`` (steps per epoch) is right when the schedule is planned.

    Args:
        dataset: The split (``augment`` and ``crop`` as for the CPU path).
        batch_size: Batch size per process.
        device: Where the images live and the batches are made.
        seed: Seed of the shuffling.
        shuffle: Reshuffle every epoch.
        drop_last: Drop the last incomplete batch.
        rank: This process's rank (default: :func:`cnf_teach.utils.process_share`).
        world_size: Number of processes (default: as ``rank``).

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.augment import JointAugment
        >>> from cnf_teach.data.drive import DeviceDriveLoader, DriveDataset
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = make_synthetic_drive(root, num_train=3, num_test=0, config=RetinaConfig(16, 16), mc_samples=0)
        ...     dataset = DriveDataset(root, multiple=8, augment=JointAugment(), seed=0, crop=8)
        >>> loader = DeviceDriveLoader(dataset, batch_size=2, device="cpu", rank=0, world_size=1)
        >>> len(loader)  # 3 images, batches of 2, the last incomplete batch dropped
        1
        >>> batch = next(iter(loader))
        >>> batch["x"].shape, batch["mask"].shape, batch["box"].tolist()
        (torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]), [[0, 0, 8, 8], [0, 0, 8, 8]])
    """

    def __init__(
        self,
        dataset: DriveDataset,
        batch_size: int,
        device: str | torch.device,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if dataset.augment is not None and not hasattr(dataset.augment, "batch"):
            raise ValueError(
                "DeviceDriveLoader augments whole batches: give the dataset an augmentation with a batch() method "
                "(cnf_teach.data.augment.JointAugment), or use a DataLoader"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        rank, world = self._shard()
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank {rank} of {world} processes: need 0 <= rank < world_size")
        share = len(range(rank, len(dataset), world))
        if drop_last and share < batch_size:
            raise ValueError(
                f"the dataset has {share} items for process {rank} of {world}, fewer than one batch of "
                f"{batch_size}; lower the batch size, use fewer processes or add data"
            )
        self.generator = torch.Generator().manual_seed(seed)
        items = [dataset.padded(i) for i in range(len(dataset))]
        self.x = torch.stack([it[0] for it in items]).to(self.device)  # [N, 3, P, P]
        self.y = torch.stack([it[1] for it in items]).to(self.device)  # [N, 1, P, P]
        self.mask = torch.stack([it[2] for it in items]).to(self.device)  # [N, 1, P, P]
        has_y2 = all(it[3] is not None for it in items)
        self.y2 = torch.stack([it[3] for it in items]).to(self.device) if has_y2 else None
        self.box = torch.tensor([it[4] for it in items])  # [N, 4]

    def _shard(self) -> tuple[int, int]:
        """``(rank, world size)``: as given, else this process's share (:func:`cnf_teach.utils.process_share`)."""
        rank, world = process_share()
        return (rank if self.rank is None else self.rank), (world if self.world_size is None else self.world_size)

    def _indices(self) -> list[int]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        rank, world = self._shard()
        return order[rank::world]

    def __len__(self) -> int:
        rank, world = self._shard()
        share = len(range(rank, len(self.dataset), world))
        return share // self.batch_size if self.drop_last else -(-share // self.batch_size)

    def make_batch(self, indices: list[int]) -> dict[str, Tensor]:
        """The batch of items ``indices``: warped, cropped and on the device (draws from the dataset's generator)."""
        ds = self.dataset
        generator = ds.generator
        index = torch.tensor(indices, device=self.device)
        x, y, mask = self.x[index], self.y[index], self.mask[index]  # [B, C, P, P]
        y2 = self.y2[index] if self.y2 is not None else None
        box = self.box[indices].clone()  # [B, 4]
        matrices, windows = [], []
        for _ in indices:  # the per-item order of draws: the map, then the window
            if ds.augment is not None:
                matrices.append(ds.augment.sample_matrix(generator))
            if ds.crop is not None:
                windows.append(ds._window())
        if matrices:
            m = torch.stack(matrices)  # [B, 2, 2]
            x, y, mask = warp_batch(x, m, "bilinear"), warp_batch(y, m, "nearest"), warp_batch(mask, m, "nearest")
        if windows:
            c = ds.crop

            def cut(t: Tensor) -> Tensor:  # [B, C, P, P] -> [B, C, c, c], one window per item
                return torch.stack([t[i, :, a : a + c, b : b + c] for i, (a, b) in enumerate(windows)])

            x, y, mask = cut(x), cut(y), cut(mask)
            y2 = cut(y2) if y2 is not None else None
            box = torch.tensor([[0, 0, c, c]] * len(indices))
        batch = {"x": x, "y": y, "mask": mask, "box": box}
        if y2 is not None:
            batch["y2"] = y2
        return batch

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        order = self._indices()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield self.make_batch(order[start : start + self.batch_size])
