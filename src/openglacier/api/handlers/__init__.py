"""Operation name -> handler, for all 33 operations (spec 1.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from openglacier.api.context import RequestContext
from openglacier.api.handlers import accounts, archives, jobs, policies, vaults

Handler = Callable[[RequestContext], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "CreateVault": vaults.create_vault,
    "DescribeVault": vaults.describe_vault,
    "ListVaults": vaults.list_vaults,
    "DeleteVault": vaults.delete_vault,
    "AddTagsToVault": vaults.add_tags,
    "RemoveTagsFromVault": vaults.remove_tags,
    "ListTagsForVault": vaults.list_tags,
    "UploadArchive": archives.upload_archive,
    "DeleteArchive": archives.delete_archive,
    "InitiateMultipartUpload": archives.initiate_multipart,
    "UploadMultipartPart": archives.upload_part,
    "CompleteMultipartUpload": archives.complete_multipart,
    "AbortMultipartUpload": archives.abort_multipart,
    "ListMultipartUploads": archives.list_multipart_uploads,
    "ListParts": archives.list_parts,
    "InitiateJob": jobs.initiate_job,
    "DescribeJob": jobs.describe_job,
    "ListJobs": jobs.list_jobs,
    "GetJobOutput": jobs.get_job_output,
    "SetVaultNotifications": jobs.set_notifications,
    "GetVaultNotifications": jobs.get_notifications,
    "DeleteVaultNotifications": jobs.delete_notifications,
    "SetVaultAccessPolicy": policies.set_access_policy,
    "GetVaultAccessPolicy": policies.get_access_policy,
    "DeleteVaultAccessPolicy": policies.delete_access_policy,
    "InitiateVaultLock": policies.initiate_lock,
    "CompleteVaultLock": policies.complete_lock,
    "AbortVaultLock": policies.abort_lock,
    "GetVaultLock": policies.get_lock,
    "GetDataRetrievalPolicy": accounts.get_data_retrieval_policy,
    "SetDataRetrievalPolicy": accounts.set_data_retrieval_policy,
    "PurchaseProvisionedCapacity": accounts.purchase_provisioned_capacity,
    "ListProvisionedCapacity": accounts.list_provisioned_capacity,
}
