//! Diesel table definitions, written by hand so that one schema serves both backends
//! (only built-in SQL types, which the multi-backend connection supports).

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    parties (id) {
        id -> BigInt,
        kind -> Text,
        uscc -> Nullable<Text>,
        id_number_hash -> Nullable<Text>,
        id_number_masked -> Nullable<Text>,
        name_zh -> Text,
        name_en -> Nullable<Text>,
        region_code -> Text,
        address -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    party_events (id) {
        id -> BigInt,
        party_id -> BigInt,
        kind -> Text,
        changes -> Text,
        document_ref -> Nullable<Text>,
        related_party_id -> Nullable<BigInt>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    compliance_flags (id) {
        id -> BigInt,
        party_id -> BigInt,
        flag -> Text,
        reason -> Text,
        set_by -> Text,
        set_at -> Timestamp,
        cleared_by -> Nullable<Text>,
        cleared_at -> Nullable<Timestamp>,
        clear_reason -> Nullable<Text>,
    }
}

diesel::table! {
    principals (id) {
        id -> BigInt,
        kind -> Text,
        username -> Text,
        secret_hash -> Text,
        role -> Text,
        party_id -> Nullable<BigInt>,
        disabled -> Bool,
        token_version -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (principal_id, idem_key) {
        principal_id -> BigInt,
        idem_key -> Text,
        request_hash -> Text,
        state -> Text,
        owner -> Text,
        lease_until -> Timestamp,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_chain_heads (chain) {
        chain -> Text,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        chain -> Text,
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        object_type -> Text,
        object_id -> Text,
        payload -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_checkpoints (id) {
        id -> BigInt,
        at -> Timestamp,
        heads -> Text,
        digest -> Text,
        key_id -> Text,
        signature -> Text,
    }
}

diesel::joinable!(party_events -> parties (party_id));
diesel::joinable!(compliance_flags -> parties (party_id));
diesel::joinable!(principals -> parties (party_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings,
    parties,
    party_events,
    compliance_flags,
    principals,
    idempotency_keys,
    audit_chain_heads,
    audit_events,
    audit_checkpoints,
);
