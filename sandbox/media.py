"""Media rules: which files the Cloud API takes, and the expiring download URLs it hands out.

https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types:
image jpeg/png 5 MB; audio aac/amr/mp3/m4a/ogg 16 MB; video mp4/3gpp 16 MB; documents 100 MB;
stickers webp 500 KB (animated; 100 KB static). A download URL is valid for 5 minutes and needs the
access token.
"""

import hashlib
import hmac

from .errors import GraphError

MB = 1024 * 1024
_TYPES: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "image/webp": ("sticker", 500 * 1024),
    "audio/aac": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "text/plain": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "document",
        100 * MB,
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "document",
        100 * MB,
    ),
}
MAX_UPLOAD = 100 * MB


def base_mime(mime_type: str) -> str:
    """`audio/ogg; codecs=opus` -> `audio/ogg`."""
    return mime_type.split(";", 1)[0].strip().lower()


def check_upload(mime_type: str, size: int) -> str:
    """The media kind of an upload ("image", "document", ...), or Meta's upload error."""
    kind_and_limit = _TYPES.get(base_mime(mime_type))
    if kind_and_limit is None:
        raise GraphError(
            131053,
            "(#131053) Media upload error",
            details=f"Unsupported file type {mime_type!r}",
        )
    kind, limit = kind_and_limit
    if size > limit:
        raise GraphError(
            131053,
            "(#131053) Media upload error",
            details=f"{kind} files can be at most {limit} bytes ({size} given)",
        )
    if size == 0:
        raise GraphError(131053, "(#131053) Media upload error", details="The file is empty")
    return kind


def kind_of(mime_type: str) -> str:
    """The message type for a file a user sends: image, audio, video, sticker or document."""
    known = _TYPES.get(base_mime(mime_type))
    if known is not None:
        return known[0]
    major = base_mime(mime_type).split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


def url_signature(secret: bytes, media_id: str, expires: int) -> str:
    return hmac.new(secret, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def url_is_valid(secret: bytes, media_id: str, expires: int, signature: str, now: float) -> bool:
    expected = url_signature(secret, media_id, expires)
    return now <= expires and hmac.compare_digest(expected, signature)
