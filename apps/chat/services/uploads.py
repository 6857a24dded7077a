"""Files sent with messages: images for vision models, kept on the configured storage.
The type is read from the bytes, not from the name or the header the client sent."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from apps.chat.models import App, EndUser, UploadFile
from apps.chat.services.end_users import end_user_get_or_create
from apps.core.errors import DomainError, NotFound

IMAGE_LIMIT_MB = 10
# (extension, mime type) by the file's first bytes.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)


class FileTooLarge(DomainError):
    code = "file_too_large"
    status = 413


class UnsupportedFileType(DomainError):
    code = "unsupported_file_type"
    status = 415


def image_kind(head: bytes) -> tuple[str, str] | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    for magic, extension, mime in _SIGNATURES:
        if head.startswith(magic):
            return extension, mime
    return None


def upload_file_create(
    *,
    app: App,
    files: list[UploadedFile],
    session_id: str,
    source: str = EndUser.Source.SERVICE_API,
) -> UploadFile:
    """Store one uploaded image for the end user `session_id` of the app."""
    if not files:
        raise DomainError("No file uploaded.", code="no_file_uploaded")
    if len(files) > 1:
        raise DomainError("Only one file is allowed.", code="too_many_files")
    end_user = end_user_get_or_create(app=app, source=source, session_id=session_id)
    upload = files[0]
    if upload.size > IMAGE_LIMIT_MB * 1024 * 1024:
        raise FileTooLarge(f"File size exceeded. Images can be at most {IMAGE_LIMIT_MB} MB.")
    head = upload.read(16)
    upload.seek(0)
    kind = image_kind(head)
    if kind is None:
        raise UnsupportedFileType("File type not allowed: send a PNG, JPEG, GIF or WebP image.")
    extension, mime = kind
    name = (upload.name or f"image.{extension}").rsplit("/", 1)[-1][:200]
    return UploadFile.objects.create(
        workspace_id=app.workspace_id,
        app=app,
        end_user=end_user,
        name=name,
        file=upload,
        size=upload.size,
        extension=extension,
        mime_type=mime,
    )


def upload_file_get(*, app: App, file_id) -> UploadFile:
    """An uploaded file of this app's workspace; anything else is "not found"."""
    try:
        found = UploadFile.objects.for_workspace(app.workspace_id).filter(pk=file_id).first()
    except (ValueError, ValidationError):
        found = None
    if found is None:
        raise NotFound("File not found.")
    return found


def upload_out(upload: UploadFile) -> dict:
    return {
        "id": str(upload.pk),
        "name": upload.name,
        "size": upload.size,
        "extension": upload.extension,
        "mime_type": upload.mime_type,
        "created_by": str(upload.end_user_id) if upload.end_user_id else None,
        "created_at": int(upload.created_at.timestamp()),
    }
