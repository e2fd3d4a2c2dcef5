//! `kube::Resource` for the kinds whose root object `#[derive(CustomResource)]` cannot express
//! (Component and Subscription carry `auth`/`scopes` next to `spec`, as in Dapr). With these impls
//! `kube::Api<Component>` and `kube::Api<Subscription>` work like they do for derived kinds.

/// Implements `kube::Resource`, `HasSpec` and `HasStatus` for a namespaced dapr.io root type with
/// `metadata`, `spec` and `status: Option<Status>` fields.
macro_rules! dapr_resource {
    ($root:ty {
        kind: $kind:expr,
        version: $version:expr,
        plural: $plural:literal,
        spec: $spec:ty $(,)?
    }) => {
        impl ::kube::Resource for $root {
            type DynamicType = ();
            type Scope = ::kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> {
                $crate::GROUP.into()
            }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn api_version(_: &()) -> ::std::borrow::Cow<'_, str> {
                format!("{}/{}", $crate::GROUP, $version).into()
            }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &$crate::meta::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut $crate::meta::ObjectMeta {
                &mut self.metadata
            }
        }

        impl ::kube::core::object::HasSpec for $root {
            type Spec = $spec;
            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        impl ::kube::core::object::HasStatus for $root {
            type Status = $crate::status::Status;
            fn status(&self) -> Option<&$crate::status::Status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut Option<$crate::status::Status> {
                &mut self.status
            }
        }

        impl $root {
            /// `metadata.name`, or `""` when the manifest has none.
            pub fn name(&self) -> &str {
                $crate::meta::name_of(&self.metadata)
            }
        }
    };
}
