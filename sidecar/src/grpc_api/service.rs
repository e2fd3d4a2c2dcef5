//! The `dapr.proto.runtime.v1.Dapr` service: the RPCs Tandem serves delegate to one adapter per
//! building block; every other RPC of the (pinned) `dapr` crate's trait answers `UNIMPLEMENTED`
//! naming itself, at once, from one macro.

use super::{
    Shared, actors, bindings, invoke, lock, metadata, pubsub, secrets, state, state_query,
    subscribe_stream,
};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_server::Dapr;
use futures_util::stream::Empty;
use tonic::{Request, Response, Status, Streaming};

/// The Dapr service over one sidecar.
pub struct DaprApi {
    pub sc: Shared,
}

/// What every RPC returns.
type Rpc<T> = Result<Response<T>, Status>;

/// What an RPC Tandem does not serve answers.
pub fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented by Tandem"))
}

/// `impl Dapr for DaprApi`: a stream type per streaming RPC, one method per
/// `name(Request) -> Response => adapter;` line that calls the block's adapter, and one per
/// `name(Request) -> Response = "RpcName";` line that answers [`unimplemented`].
macro_rules! dapr_service {
    (
        streams { $($stream:ident = $item:ty;)* }
        served { $($name:ident($req:ty) -> $resp:ty => $adapter:path;)* }
        unimplemented { $($missing:ident($mreq:ty) -> $mresp:ty = $rpc:literal;)* }
    ) => {
        #[tonic::async_trait]
        impl Dapr for DaprApi {
            $(type $stream = $item;)*
            $(
                async fn $name(&self, request: Request<$req>) -> Rpc<$resp> {
                    $adapter(&self.sc, request).await
                }
            )*
            $(
                async fn $missing(&self, _request: Request<$mreq>) -> Rpc<$mresp> {
                    Err(unimplemented($rpc))
                }
            )*
        }
    };
}

/// A stream type for streaming RPCs that are never served.
type Never<T> = Empty<Result<T, Status>>;

dapr_service! {
    streams {
        SubscribeTopicEventsAlpha1Stream = subscribe_stream::Events;
        SubscribeConfigurationAlpha1Stream = Never<rt::SubscribeConfigurationResponse>;
        SubscribeConfigurationStream = Never<rt::SubscribeConfigurationResponse>;
        EncryptAlpha1Stream = Never<rt::EncryptResponse>;
        DecryptAlpha1Stream = Never<rt::DecryptResponse>;
    }
    served {
        invoke_service(rt::InvokeServiceRequest) -> common::InvokeResponse => invoke::invoke;
        get_state(rt::GetStateRequest) -> rt::GetStateResponse => state::get;
        get_bulk_state(rt::GetBulkStateRequest) -> rt::GetBulkStateResponse => state::get_bulk;
        save_state(rt::SaveStateRequest) -> () => state::save;
        delete_state(rt::DeleteStateRequest) -> () => state::delete;
        delete_bulk_state(rt::DeleteBulkStateRequest) -> () => state::delete_bulk;
        execute_state_transaction(rt::ExecuteStateTransactionRequest) -> () => state::transaction;
        publish_event(rt::PublishEventRequest) -> () => pubsub::publish;
        bulk_publish_event_alpha1(rt::BulkPublishRequest)
            -> rt::BulkPublishResponse => pubsub::bulk_publish;
        bulk_publish_event(rt::BulkPublishRequest)
            -> rt::BulkPublishResponse => pubsub::bulk_publish;
        subscribe_topic_events_alpha1(Streaming<rt::SubscribeTopicEventsRequestAlpha1>)
            -> subscribe_stream::Events => subscribe_stream::subscribe;
        invoke_binding(rt::InvokeBindingRequest) -> rt::InvokeBindingResponse => bindings::invoke;
        get_secret(rt::GetSecretRequest) -> rt::GetSecretResponse => secrets::get;
        get_bulk_secret(rt::GetBulkSecretRequest) -> rt::GetBulkSecretResponse => secrets::bulk;
        get_metadata(rt::GetMetadataRequest) -> rt::GetMetadataResponse => metadata::get;
        set_metadata(rt::SetMetadataRequest) -> () => metadata::set;
        shutdown(rt::ShutdownRequest) -> () => metadata::shutdown;
        query_state_alpha1(rt::QueryStateRequest)
            -> rt::QueryStateResponse => state_query::query;
        try_lock_alpha1(rt::TryLockRequest) -> rt::TryLockResponse => lock::try_lock;
        unlock_alpha1(rt::UnlockRequest) -> rt::UnlockResponse => lock::unlock;
        invoke_actor(rt::InvokeActorRequest) -> rt::InvokeActorResponse => actors::invoke;
        get_actor_state(rt::GetActorStateRequest)
            -> rt::GetActorStateResponse => actors::get_state;
        execute_actor_state_transaction(rt::ExecuteActorStateTransactionRequest)
            -> () => actors::transaction;
        register_actor_timer(rt::RegisterActorTimerRequest) -> () => actors::register_timer;
        unregister_actor_timer(rt::UnregisterActorTimerRequest)
            -> () => actors::unregister_timer;
        register_actor_reminder(rt::RegisterActorReminderRequest)
            -> () => actors::register_reminder;
        unregister_actor_reminder(rt::UnregisterActorReminderRequest)
            -> () => actors::unregister_reminder;
        get_actor_reminder(rt::GetActorReminderRequest)
            -> rt::GetActorReminderResponse => actors::get_reminder;
        list_actor_reminders(rt::ListActorRemindersRequest)
            -> rt::ListActorRemindersResponse => actors::list_reminders;
        unregister_actor_reminders_by_type(rt::UnregisterActorRemindersByTypeRequest)
            -> rt::UnregisterActorRemindersByTypeResponse => actors::unregister_reminders_by_type;
    }
    unimplemented {
        get_configuration_alpha1(rt::GetConfigurationRequest)
            -> rt::GetConfigurationResponse = "GetConfigurationAlpha1";
        get_configuration(rt::GetConfigurationRequest)
            -> rt::GetConfigurationResponse = "GetConfiguration";
        subscribe_configuration_alpha1(rt::SubscribeConfigurationRequest)
            -> Self::SubscribeConfigurationAlpha1Stream = "SubscribeConfigurationAlpha1";
        subscribe_configuration(rt::SubscribeConfigurationRequest)
            -> Self::SubscribeConfigurationStream = "SubscribeConfiguration";
        unsubscribe_configuration_alpha1(rt::UnsubscribeConfigurationRequest)
            -> rt::UnsubscribeConfigurationResponse = "UnsubscribeConfigurationAlpha1";
        unsubscribe_configuration(rt::UnsubscribeConfigurationRequest)
            -> rt::UnsubscribeConfigurationResponse = "UnsubscribeConfiguration";
        encrypt_alpha1(Streaming<rt::EncryptRequest>)
            -> Self::EncryptAlpha1Stream = "EncryptAlpha1";
        decrypt_alpha1(Streaming<rt::DecryptRequest>)
            -> Self::DecryptAlpha1Stream = "DecryptAlpha1";
        subtle_get_key_alpha1(rt::SubtleGetKeyRequest)
            -> rt::SubtleGetKeyResponse = "SubtleGetKeyAlpha1";
        subtle_encrypt_alpha1(rt::SubtleEncryptRequest)
            -> rt::SubtleEncryptResponse = "SubtleEncryptAlpha1";
        subtle_decrypt_alpha1(rt::SubtleDecryptRequest)
            -> rt::SubtleDecryptResponse = "SubtleDecryptAlpha1";
        subtle_wrap_key_alpha1(rt::SubtleWrapKeyRequest)
            -> rt::SubtleWrapKeyResponse = "SubtleWrapKeyAlpha1";
        subtle_unwrap_key_alpha1(rt::SubtleUnwrapKeyRequest)
            -> rt::SubtleUnwrapKeyResponse = "SubtleUnwrapKeyAlpha1";
        subtle_sign_alpha1(rt::SubtleSignRequest) -> rt::SubtleSignResponse = "SubtleSignAlpha1";
        subtle_verify_alpha1(rt::SubtleVerifyRequest)
            -> rt::SubtleVerifyResponse = "SubtleVerifyAlpha1";
        start_workflow_alpha1(rt::StartWorkflowRequest)
            -> rt::StartWorkflowResponse = "StartWorkflowAlpha1";
        get_workflow_alpha1(rt::GetWorkflowRequest)
            -> rt::GetWorkflowResponse = "GetWorkflowAlpha1";
        purge_workflow_alpha1(rt::PurgeWorkflowRequest) -> () = "PurgeWorkflowAlpha1";
        terminate_workflow_alpha1(rt::TerminateWorkflowRequest) -> () = "TerminateWorkflowAlpha1";
        pause_workflow_alpha1(rt::PauseWorkflowRequest) -> () = "PauseWorkflowAlpha1";
        resume_workflow_alpha1(rt::ResumeWorkflowRequest) -> () = "ResumeWorkflowAlpha1";
        raise_event_workflow_alpha1(rt::RaiseEventWorkflowRequest)
            -> () = "RaiseEventWorkflowAlpha1";
        start_workflow_beta1(rt::StartWorkflowRequest)
            -> rt::StartWorkflowResponse = "StartWorkflowBeta1";
        get_workflow_beta1(rt::GetWorkflowRequest) -> rt::GetWorkflowResponse = "GetWorkflowBeta1";
        purge_workflow_beta1(rt::PurgeWorkflowRequest) -> () = "PurgeWorkflowBeta1";
        terminate_workflow_beta1(rt::TerminateWorkflowRequest) -> () = "TerminateWorkflowBeta1";
        pause_workflow_beta1(rt::PauseWorkflowRequest) -> () = "PauseWorkflowBeta1";
        resume_workflow_beta1(rt::ResumeWorkflowRequest) -> () = "ResumeWorkflowBeta1";
        raise_event_workflow_beta1(rt::RaiseEventWorkflowRequest) -> () = "RaiseEventWorkflowBeta1";
        schedule_job_alpha1(rt::ScheduleJobRequest)
            -> rt::ScheduleJobResponse = "ScheduleJobAlpha1";
        schedule_job(rt::ScheduleJobRequest) -> rt::ScheduleJobResponse = "ScheduleJob";
        get_job_alpha1(rt::GetJobRequest) -> rt::GetJobResponse = "GetJobAlpha1";
        get_job(rt::GetJobRequest) -> rt::GetJobResponse = "GetJob";
        delete_job_alpha1(rt::DeleteJobRequest) -> rt::DeleteJobResponse = "DeleteJobAlpha1";
        delete_job(rt::DeleteJobRequest) -> rt::DeleteJobResponse = "DeleteJob";
        delete_jobs_by_prefix_alpha1(rt::DeleteJobsByPrefixRequestAlpha1)
            -> rt::DeleteJobsByPrefixResponseAlpha1 = "DeleteJobsByPrefixAlpha1";
        delete_jobs_by_prefix(rt::DeleteJobsByPrefixRequest)
            -> rt::DeleteJobsByPrefixResponse = "DeleteJobsByPrefix";
        list_jobs_alpha1(rt::ListJobsRequestAlpha1)
            -> rt::ListJobsResponseAlpha1 = "ListJobsAlpha1";
        list_jobs(rt::ListJobsRequest) -> rt::ListJobsResponse = "ListJobs";
        converse_alpha1(rt::ConversationRequest) -> rt::ConversationResponse = "ConverseAlpha1";
        converse_alpha2(rt::ConversationRequestAlpha2)
            -> rt::ConversationResponseAlpha2 = "ConverseAlpha2";
        create_index_alpha1(rt::CreateIndexRequestAlpha1) -> () = "CreateIndexAlpha1";
        get_index_alpha1(rt::GetIndexRequestAlpha1)
            -> rt::GetIndexResponseAlpha1 = "GetIndexAlpha1";
        list_indexes_alpha1(rt::ListIndexesRequestAlpha1)
            -> rt::ListIndexesResponseAlpha1 = "ListIndexesAlpha1";
        delete_index_alpha1(rt::DeleteIndexRequestAlpha1) -> () = "DeleteIndexAlpha1";
        index_documents_alpha1(rt::IndexDocumentsRequestAlpha1)
            -> rt::IndexDocumentsResponseAlpha1 = "IndexDocumentsAlpha1";
        get_documents_alpha1(rt::GetDocumentsRequestAlpha1)
            -> rt::GetDocumentsResponseAlpha1 = "GetDocumentsAlpha1";
        delete_documents_alpha1(rt::DeleteDocumentsRequestAlpha1)
            -> rt::DeleteDocumentsResponseAlpha1 = "DeleteDocumentsAlpha1";
        search_alpha1(rt::SearchRequestAlpha1) -> rt::SearchResponseAlpha1 = "SearchAlpha1";
        create_collection_alpha1(rt::CreateCollectionRequestAlpha1)
            -> () = "CreateCollectionAlpha1";
        get_collection_alpha1(rt::GetCollectionRequestAlpha1)
            -> rt::GetCollectionResponseAlpha1 = "GetCollectionAlpha1";
        list_collections_alpha1(rt::ListCollectionsRequestAlpha1)
            -> rt::ListCollectionsResponseAlpha1 = "ListCollectionsAlpha1";
        delete_collection_alpha1(rt::DeleteCollectionRequestAlpha1)
            -> () = "DeleteCollectionAlpha1";
        upsert_vectors_alpha1(rt::UpsertVectorsRequestAlpha1)
            -> rt::UpsertVectorsResponseAlpha1 = "UpsertVectorsAlpha1";
        delete_vectors_alpha1(rt::DeleteVectorsRequestAlpha1)
            -> rt::DeleteVectorsResponseAlpha1 = "DeleteVectorsAlpha1";
        get_vectors_alpha1(rt::GetVectorsRequestAlpha1)
            -> rt::GetVectorsResponseAlpha1 = "GetVectorsAlpha1";
        query_vectors_alpha1(rt::QueryVectorsRequestAlpha1)
            -> rt::QueryVectorsResponseAlpha1 = "QueryVectorsAlpha1";
        batch_query_vectors_alpha1(rt::BatchQueryVectorsRequestAlpha1)
            -> rt::BatchQueryVectorsResponseAlpha1 = "BatchQueryVectorsAlpha1";
    }
}
