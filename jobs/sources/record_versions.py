"""What a provider's API answered, read into the version a record resolves to
(``RecordVersion``) or into the error that answer means (issue 25). Pure: an answer
is ``(HTTP status, parsed JSON body or None)``; ``jobs.sources.record_apis`` asks.

Facts from the providers' documentation (shapes recorded in tests/data/providers/):

- Zenodo ``GET /api/records/<id>``: ``id`` (the version's record id, an integer),
  ``conceptrecid`` (the concept's, a string), ``metadata.access_right``, ``files[].size``.
  A concept id answers with its latest version (the API redirects there), so the
  answer's ``conceptrecid`` equals the id asked.
- Figshare ``GET /v2/articles/<id>[/versions/<v>]``: ``id``, ``version``, ``is_public``,
  ``files[].size`` and ``files[].is_link_only`` (a link is not downloaded).
- Dataverse ``GET /api/datasets/:persistentId/[versions/<v>]?persistentId=<pid>``:
  ``{"status": "OK", "data": …}``; the dataset's ``protocol``, ``authority``,
  ``identifier`` and ``latestVersion``; a version's ``datasetPersistentId``,
  ``versionNumber``, ``versionMinorNumber``, ``versionState``, ``files[].restricted``,
  ``files[].dataFile.filesize`` (an ingested table's stored form) and, for an ingested
  table, ``originalFileName`` and ``originalFileSize`` (the file as uploaded).
- Software Heritage ``GET /api/1/revision/<sha1_git>/`` (an object whose ``id`` is the
  revision's hash and ``directory`` its root directory's) and
  ``GET /api/1/directory/<sha1_git>/`` (a list of the directory's entries); 404 (``{"exception":
  "NotFoundExc", "reason": …}``) when the archive holds no such object (swh-web's API
  documentation).
- HydroShare ``GET /hsapi/resource/<id>/scimeta/elements``: ``dates[]``, each a ``type``
  (``created``, ``modified``, ``published``, ...) and a ``start_date`` (ISO 8601, UTC,
  ``2019-09-05T19:20:01.233423Z``); 404 when no such resource, 403 when not public.
- CKAN action API ``GET <host>/api/3/action/package_show?id=<name or id>``: ``{"success":
  true, "result": …}``; the dataset's ``id``, ``name``, ``private``,
  ``metadata_modified`` (ISO 8601 without a zone, UTC), ``resources[].size``; 404 with
  ``success`` false when no such dataset, 403 when not public.
  ``package_activity_list?id=<id>``: ``result``, the dataset's activities newest first,
  each an ``id`` (a UUID) and a ``timestamp``; an error answer when the activity plugin
  (CKAN 2.10+; core before) is not on.
- doi.org ``GET /api/handles/<doi>``: ``values[]``, the first of ``type`` ``URL`` is
  where the DOI leads; 404 (``responseCode`` 100) when no such DOI.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from ..errors import ProviderUnavailable, RecordNotFound, RecordTooLarge
from .records import RecordSource, RecordVersion, dataverse_content

Answer = tuple[int, Any]
"""An API's answer: the HTTP status (below 500: ``record_apis`` turns the rest into
``ProviderUnavailable``) and the body as parsed JSON (None when it was not JSON)."""


def field(body: Any, *path: str | int, kind: type | tuple[type, ...] = object) -> Any:
    """``body[path[0]][path[1]]…``, of type ``kind``; a missing key or another type is
    a shape we do not know: ``ProviderUnavailable`` (the API may have changed or
    failed; never taken for "no such record")."""
    value = body
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            value = None
            break
    a_bool_for_another_kind = isinstance(value, bool) and kind not in (bool, object)
    if value is None or not isinstance(value, kind) or a_bool_for_another_kind:
        where = ".".join(str(key) for key in path)
        raise ProviderUnavailable(f"the provider answered without a usable {where!r}")
    return value


def check_size(source: RecordSource, total: int | None, limit: int | None) -> None:
    """``RecordTooLarge`` when the record's files (``total`` bytes) exceed ``limit``."""
    if limit is not None and total is not None and total > limit:
        raise RecordTooLarge(
            f"{source.provider} record {source.record} has {total} bytes of files; "
            f"this service builds from records of at most {limit} bytes"
        )


def _found(source: RecordSource, answer: Answer, what: str) -> Any:
    """The body of a 2xx answer; ``RecordNotFound`` for 404 and 410 (and 403: not
    public); ``ProviderUnavailable`` for any other status."""
    status, body = answer
    if status in (403, 404, 410):
        version = f" version {source.version}" if source.version else ""
        raise RecordNotFound(
            f"{what} {source.record}{version} on {source.host} does not exist or is not public"
        )
    if not 200 <= status < 300 or body is None:
        raise ProviderUnavailable(f"{source.host} answered {status} for {what} {source.record}")
    return body


def zenodo_version(source: RecordSource, answer: Answer) -> RecordVersion:
    """A Zenodo record (a version's id, or a concept's: its latest version)."""
    body = _found(source, answer, "Zenodo record")
    record_id = str(field(body, "id", kind=(int, str)))
    concept = str(field(body, "conceptrecid", kind=(int, str)))
    if source.record not in (record_id, concept):
        raise ProviderUnavailable(
            f"{source.host} answered record {record_id} for record {source.record}"
        )
    if field(body, "metadata", "access_right", kind=str) != "open":
        raise RecordNotFound(f"Zenodo record {source.record} on {source.host} is not open access")
    files = field(body, "files", kind=list)
    return RecordVersion(
        provider="zenodo",
        host=source.host,
        record=concept,
        version=record_id,
        content=f"https://{source.host}/records/{record_id}",
        total_size=sum(field(f, "size", kind=int) for f in files),
        moves=record_id != source.record,
    )


def figshare_version(source: RecordSource, answer: Answer) -> RecordVersion:
    """A Figshare article at the version asked, or at its current version."""
    body = _found(source, answer, "Figshare article")
    article = str(field(body, "id", kind=int))
    version = str(field(body, "version", kind=int))
    if article != source.record or source.version not in (None, version):
        raise ProviderUnavailable(
            f"figshare answered article {article} v{version} for {source.record} "
            f"v{source.version or '(latest)'}"
        )
    if field(body, "is_public", kind=bool) is not True:
        raise RecordNotFound(f"Figshare article {article} is not public")
    files = [f for f in field(body, "files", kind=list) if not field(f, "is_link_only", kind=bool)]
    return RecordVersion(
        provider="figshare",
        host="figshare.com",
        record=article,
        version=version,
        content=f"https://figshare.com/articles/_/{article}/{version}",
        total_size=sum(field(f, "size", kind=int) for f in files),
        moves=source.version is None,
    )


def dataverse_version(source: RecordSource, answer: Answer) -> RecordVersion:
    """A Dataverse dataset at the version asked (the answer is that version), or at
    its latest released version (the answer is the dataset)."""
    body = _found(source, answer, "Dataverse dataset")
    if field(body, "status", kind=str) != "OK":
        raise ProviderUnavailable(f"{source.host} answered status {body.get('status')!r}")
    data = field(body, "data", kind=dict)
    if source.version is None:
        pid = "{}:{}/{}".format(
            field(data, "protocol", kind=str),
            field(data, "authority", kind=str),
            field(data, "identifier", kind=str),
        )
        data = field(data, "latestVersion", kind=dict)
    else:
        pid = field(data, "datasetPersistentId", kind=str)
    number = (
        f"{field(data, 'versionNumber', kind=int)}.{field(data, 'versionMinorNumber', kind=int)}"
    )
    if source.version not in (None, number):
        raise ProviderUnavailable(f"{source.host} answered version {number} for {source.version}")
    if field(data, "versionState", kind=str) != "RELEASED":
        raise RecordNotFound(f"Dataverse dataset {source.record} has no released version")
    return RecordVersion(
        provider="dataverse",
        host=source.host,
        record=pid,
        version=number,
        content=dataverse_content(source.host, pid, number),
        total_size=sum(dataverse_fetched_size(f) for f in field(data, "files", kind=list)),
        moves=source.version is None,
    )


def dataverse_fetched_size(entry: Any) -> int:
    """Bytes the build downloads for one file of a Dataverse version's list, as
    builder/'s ``Dataverse`` provider fetches it (``version_files``): none for a
    restricted file (``restricted``: no anonymous download serves it, so the build
    leaves it out); an ingested table's ``dataFile.originalFileSize`` (it is fetched as
    uploaded, ``format=original``) when listed; else ``dataFile.filesize``."""
    data_file = field(entry, "dataFile", kind=dict)
    if entry.get("restricted"):
        return 0
    original = data_file.get("originalFileSize")
    if data_file.get("originalFileName") and type(original) is int:
        return original
    return int(field(data_file, "filesize", kind=int))


def swh_version(source: RecordSource, answer: Answer) -> RecordVersion:
    """A SWHID (``swh:1:rev:…`` or ``swh:1:dir:…``) the archive holds: its own version
    (a SWHID is the hash of its content, so it never moves). The answer is the
    revision's (its ``id`` must be the hash asked) or the directory's entries."""
    body = _found(source, answer, "SWHID")
    kind, digest = source.record.split(":")[2:4]
    if kind == "rev" and field(body, "id", kind=str) != digest:
        raise ProviderUnavailable(f"{source.host} answered revision {body['id']} for {digest}")
    if kind == "dir" and not isinstance(body, list):
        raise ProviderUnavailable(f"{source.host} answered no entries for directory {digest}")
    return RecordVersion(
        provider="swh",
        host=source.host,
        record=source.record,
        version=source.record,
        content=source.record,
        total_size=None,
        moves=False,
    )


def modified_version(text: str) -> str:
    """A modification time as a version: Unix seconds, with the microseconds after a
    dot when there are any (``2019-09-05T19:20:01.233423Z`` -> ``1567711201.233423``).
    ISO 8601; a time without a zone is UTC (CKAN's). ``ProviderUnavailable`` for
    another form. The same rule is ``binderhub_service_builder.contentproviders``'s."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ProviderUnavailable(
            f"the provider answered a time we cannot read: {text[:40]!r}"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    seconds = calendar.timegm(when.timetuple())
    return f"{seconds}.{when.microsecond:06d}" if when.microsecond else str(seconds)


def hydroshare_version(source: RecordSource, answer: Answer) -> RecordVersion:
    """A HydroShare resource at its modification time (HydroShare keeps no versions:
    the build checks the time before and after it downloads, ``content``'s
    ``modified``)."""
    body = _found(source, answer, "HydroShare resource")
    modified = [
        d
        for d in field(body, "dates", kind=list)
        if isinstance(d, dict) and d.get("type") == "modified"
    ]
    if len(modified) != 1:
        raise ProviderUnavailable(f"{source.host} answered no modification time of {source.record}")
    version = modified_version(field(modified[0], "start_date", kind=str))
    return RecordVersion(
        provider="hydroshare",
        host=source.host,
        record=source.record,
        version=version,
        content=f"https://{source.host}/resource/{source.record}?modified={version}",
        total_size=None,
        moves=True,
    )


def _ckan_result(source: RecordSource, answer: Answer) -> Any:
    body = _found(source, answer, "CKAN dataset")
    if field(body, "success", kind=bool) is not True:
        raise ProviderUnavailable(f"{source.host} answered success false for {source.record}")
    return field(body, "result", kind=(dict, list))


def ckan_activities(source: RecordSource, answer: Answer) -> list[str] | None:
    """The activity ids of a dataset, newest first (``package_activity_list``), or
    None when the CKAN answers that it has no activity API (a 400 or 404 for the
    action, or ``success`` false: the activity plugin is off)."""
    status, body = answer
    if status in (400, 404) or (isinstance(body, dict) and body.get("success") is False):
        return None
    result = _ckan_result(source, answer)
    if not isinstance(result, list):
        raise ProviderUnavailable(f"{source.host} answered no list of activities")
    return [str(field(a, "id", kind=str)) for a in result]


def ckan_version(
    source: RecordSource, package: Answer, activities: list[str] | None
) -> RecordVersion:
    """A CKAN dataset (``package_show``'s answer) at the activity asked
    (``source.version``: a version of its own, fixed), else at its modification time
    and, when the CKAN keeps activities (``activities``, newest first), its newest
    activity: version ``<time>`` or ``<time>-<activity id>``. ``content`` names the
    activity repo2docker fetches the dataset as of and the time it checks before and
    after (``modified``), which only a version that moves has."""
    result = _ckan_result(source, package)
    if not isinstance(result, dict):
        raise ProviderUnavailable(f"{source.host} answered no dataset for {source.record}")
    dataset = str(field(result, "id", kind=str))
    if source.record not in (dataset, field(result, "name", kind=str)):
        raise ProviderUnavailable(f"{source.host} answered dataset {dataset} for {source.record}")
    if result.get("private") is True:
        raise RecordNotFound(f"CKAN dataset {source.record} on {source.host} is not public")
    sizes = [r.get("size") for r in field(result, "resources", kind=list) if isinstance(r, dict)]
    total = (
        sum(s for s in sizes if isinstance(s, int))
        if all(isinstance(s, int) for s in sizes)
        else None
    )
    base = f"https://{source.host}/dataset/{dataset}"
    if source.version is not None:
        if activities is not None and source.version not in activities:
            raise RecordNotFound(
                f"CKAN dataset {source.record} on {source.host} has no activity {source.version}"
            )
        version, content = source.version, f"{base}?activity_id={source.version}"
    else:
        modified = modified_version(field(result, "metadata_modified", kind=str))
        if activities:
            version = f"{modified}-{activities[0]}"
            content = f"{base}?activity_id={activities[0]}&modified={modified}"
        else:
            version, content = modified, f"{base}?modified={modified}"
    return RecordVersion(
        provider="ckan",
        host=source.host,
        record=dataset,
        version=version,
        content=content,
        total_size=total,
        moves=source.version is None,
    )


def doi_target(doi: str, answer: Answer) -> str:
    """Where doi.org says ``doi`` leads (the first ``URL`` value); ``RecordNotFound``
    when there is no such DOI or it leads nowhere."""
    status, body = answer
    if status == 404:
        raise RecordNotFound(f"DOI {doi} does not exist (doi.org knows no such DOI)")
    if status != 200 or body is None:
        raise ProviderUnavailable(f"doi.org answered {status} for DOI {doi}")
    for value in field(body, "values", kind=list):
        if isinstance(value, dict) and value.get("type") == "URL":
            return str(field(value, "data", "value", kind=str))
    raise RecordNotFound(f"DOI {doi} leads to no URL")
