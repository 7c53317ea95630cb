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
        person_id -> Nullable<Text>,
    }
}

diesel::table! {
    login_failures (username) {
        username -> Text,
        failures -> BigInt,
        last_failed_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures_by_address (username, client_address) {
        username -> Text,
        client_address -> Text,
        failures -> BigInt,
        last_failed_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_change_due (principal_id) {
        principal_id -> BigInt,
        since -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (principal_id, idem_key) {
        principal_id -> BigInt,
        idem_key -> Text,
        request_hash -> Text,
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
        seq -> Nullable<BigInt>,
        prev_hash -> Nullable<Text>,
    }
}

diesel::table! {
    right_types (code) {
        code -> Text,
        name_zh -> Text,
        name_en -> Text,
        unit -> Text,
        max_places -> Integer,
        requires_approval -> Bool,
        sub_kind_label -> Nullable<Text>,
        sub_kinds -> Text,
        serialized -> Bool,
        priced_per_year -> Bool,
    }
}

diesel::table! {
    proposals (id) {
        id -> BigInt,
        kind -> Text,
        payload -> Text,
        status -> Text,
        source_document -> Nullable<Text>,
        proposed_by -> BigInt,
        proposed_by_name -> Text,
        decided_by -> Nullable<BigInt>,
        decided_by_name -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
        result -> Nullable<Text>,
        created_at -> Timestamp,
        proposed_by_person -> Nullable<Text>,
    }
}

diesel::table! {
    lots (id) {
        id -> BigInt,
        right_type -> Text,
        sub_kind -> Nullable<Text>,
        certificate_no -> Text,
        source_document -> Text,
        vintage -> Integer,
        compliance_year -> Nullable<Integer>,
        valid_from -> Date,
        valid_to -> Date,
        region_code -> Text,
        origin -> Text,
        project -> Nullable<Text>,
        monitoring_period -> Nullable<Text>,
        issued -> BigInt,
        retired -> BigInt,
        cancelled -> BigInt,
        first_holder_id -> BigInt,
        proposed_by -> Text,
        approved_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        source_key -> Nullable<Text>,
    }
}

diesel::table! {
    acquisitions (id) {
        id -> BigInt,
        holding_id -> BigInt,
        kind -> Text,
        quantity -> BigInt,
    }
}

diesel::table! {
    holdings (id) {
        id -> BigInt,
        party_id -> BigInt,
        lot_id -> BigInt,
        available -> BigInt,
        listed -> BigInt,
        in_transfer -> BigInt,
        pledged -> BigInt,
        frozen -> BigInt,
        updated_at -> Timestamp,
        reserved -> BigInt,
    }
}

diesel::table! {
    serial_ranges (id) {
        id -> BigInt,
        lot_id -> BigInt,
        party_id -> Nullable<BigInt>,
        state -> Text,
        first_serial -> BigInt,
        last_serial -> BigInt,
    }
}

diesel::table! {
    movements (id) {
        id -> BigInt,
        lot_id -> BigInt,
        from_party_id -> Nullable<BigInt>,
        from_bucket -> Text,
        to_party_id -> Nullable<BigInt>,
        to_bucket -> Text,
        quantity -> BigInt,
        cause -> Text,
        reference -> Text,
        serials -> Nullable<Text>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    transfers (id) {
        id -> BigInt,
        lot_id -> BigInt,
        from_party_id -> BigInt,
        to_party_id -> BigInt,
        quantity -> BigInt,
        kind -> Text,
        status -> Text,
        requires_approval -> Bool,
        unit_price -> Nullable<BigInt>,
        years -> Nullable<Integer>,
        amount -> Nullable<BigInt>,
        document_ref -> Nullable<Text>,
        note -> Nullable<Text>,
        serials -> Nullable<Text>,
        requested_by -> Text,
        confirmed_by -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decision_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    retirements (id) {
        id -> BigInt,
        lot_id -> BigInt,
        party_id -> BigInt,
        kind -> Text,
        quantity -> BigInt,
        reason -> Text,
        beneficiary -> Nullable<Text>,
        compliance_year -> Nullable<Integer>,
        serials -> Nullable<Text>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(acquisitions -> holdings (holding_id));
diesel::joinable!(holdings -> lots (lot_id));
diesel::joinable!(holdings -> parties (party_id));
diesel::joinable!(lots -> right_types (right_type));
diesel::joinable!(transfers -> lots (lot_id));
diesel::joinable!(movements -> lots (lot_id));
diesel::joinable!(serial_ranges -> lots (lot_id));
diesel::joinable!(retirements -> lots (lot_id));

diesel::table! {
    pledges (id) {
        id -> BigInt,
        registration_no -> Nullable<Text>,
        lot_id -> BigInt,
        pledgor_id -> BigInt,
        lender_id -> BigInt,
        quantity -> BigInt,
        applied_quantity -> BigInt,
        serials -> Nullable<Text>,
        status -> Text,
        rank -> Nullable<Integer>,
        secured_amount -> Nullable<BigInt>,
        loan_reference -> Nullable<Text>,
        loan_maturity -> Nullable<Date>,
        period_end -> Nullable<Date>,
        registered_at -> Nullable<Timestamp>,
        appraisal_value -> Nullable<BigInt>,
        appraiser -> Nullable<Text>,
        appraisal_date -> Nullable<Date>,
        pboc_registration_no -> Nullable<Text>,
        verification_code -> Nullable<Text>,
        amendment_code_hash -> Nullable<Text>,
        claim_amount -> Nullable<BigInt>,
        claim_detail -> Nullable<Text>,
        proceeds -> Nullable<BigInt>,
        paid_to_lender -> Nullable<BigInt>,
        paid_to_pledgor -> Nullable<BigInt>,
        lapse_warned_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        ltv_alerted -> Bool,
        claim_root_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    pledge_entries (id) {
        id -> BigInt,
        pledge_id -> BigInt,
        seq -> Integer,
        kind -> Text,
        details -> Text,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    objections (id) {
        id -> BigInt,
        registration_no -> Text,
        party_id -> BigInt,
        standing -> Text,
        reason -> Text,
        status -> Text,
        filed_by -> Text,
        filed_at -> Timestamp,
        lapses_at -> Timestamp,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        resolution -> Nullable<Text>,
    }
}

diesel::table! {
    judicial_freezes (id) {
        id -> BigInt,
        lot_id -> BigInt,
        party_id -> BigInt,
        quantity -> BigInt,
        court -> Text,
        case_no -> Text,
        document_ref -> Text,
        status -> Text,
        ordered_by -> Text,
        ordered_at -> Timestamp,
        lift_document_ref -> Nullable<Text>,
        lifted_by -> Nullable<Text>,
        lifted_at -> Nullable<Timestamp>,
        pledged -> BigInt,
        executed -> BigInt,
        pending -> BigInt,
    }
}

diesel::table! {
    judicial_freeze_holds (id) {
        id -> BigInt,
        freeze_id -> BigInt,
        step -> Text,
        quantity -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    search_certificates (id) {
        id -> BigInt,
        certificate_no -> Text,
        requested_by -> BigInt,
        body -> Text,
        key_id -> Text,
        signature -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    id_lookup_counts (bank_key, day) {
        bank_key -> Text,
        day -> Date,
        used -> Integer,
    }
}

diesel::table! {
    page_sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        principal_id -> BigInt,
        token_version -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(pledges -> lots (lot_id));
diesel::joinable!(pledge_entries -> pledges (pledge_id));
diesel::joinable!(judicial_freezes -> lots (lot_id));

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        party_id -> BigInt,
        url -> Text,
        active -> Bool,
        created_at -> Timestamp,
        secret_salt -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> BigInt,
        ordering_key -> Text,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        last_status -> Nullable<Integer>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (key_id) {
        key_id -> Text,
        public_key -> Text,
        first_used_at -> Timestamp,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));

diesel::table! {
    forest_parcels (id) {
        id -> BigInt,
        certificate_no -> Text,
        holder_id -> BigInt,
        rights -> Text,
        county_code -> Text,
        township -> Text,
        village -> Text,
        compartment -> Text,
        sub_compartment -> Text,
        place_name -> Nullable<Text>,
        area_mu -> BigInt,
        forest_category -> Text,
        commercial_kind -> Nullable<Text>,
        origin -> Text,
        dominant_species -> Text,
        age_group -> Nullable<Text>,
        stock_volume -> BigInt,
        woodland_term_end -> Date,
        ownership -> Text,
        management_form -> Text,
        registered -> Bool,
        disputed -> Bool,
        boundary -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        status -> Text,
        split_from -> Nullable<BigInt>,
        certificate_key -> Nullable<Text>,
    }
}

diesel::table! {
    forest_mortgages (id) {
        id -> BigInt,
        registration_no -> Nullable<Text>,
        mortgagor_id -> BigInt,
        lender_id -> BigInt,
        status -> Text,
        secured_amount -> Nullable<BigInt>,
        loan_start -> Nullable<Date>,
        loan_end -> Nullable<Date>,
        appraisal_value -> Nullable<BigInt>,
        appraiser -> Nullable<Text>,
        appraisal_kind -> Nullable<Text>,
        appraisal_date -> Nullable<Date>,
        appraisal_report_no -> Nullable<Text>,
        insurance_policy_no -> Nullable<Text>,
        insurer -> Nullable<Text>,
        insured_amount -> Nullable<BigInt>,
        insurance_beneficiary_id -> Nullable<BigInt>,
        consent -> Nullable<Text>,
        transfer_ban -> Bool,
        official_certificate_no -> Nullable<Text>,
        official_registered_at -> Nullable<Timestamp>,
        claim_amount -> Nullable<BigInt>,
        claim_detail -> Nullable<Text>,
        proceeds -> Nullable<BigInt>,
        paid_to_lender -> Nullable<BigInt>,
        paid_to_mortgagor -> Nullable<BigInt>,
        verification_code -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        official_entered_by -> Nullable<Text>,
        official_confirmed_by -> Nullable<Text>,
    }
}

diesel::table! {
    forest_mortgage_parcels (mortgage_id, parcel_id) {
        mortgage_id -> BigInt,
        parcel_id -> BigInt,
        rank_at_registration -> Nullable<Integer>,
    }
}

diesel::table! {
    forest_mortgage_entries (id) {
        id -> BigInt,
        mortgage_id -> BigInt,
        seq -> Integer,
        kind -> Text,
        details -> Text,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(forest_mortgage_parcels -> forest_mortgages (mortgage_id));
diesel::joinable!(forest_mortgage_parcels -> forest_parcels (parcel_id));
diesel::joinable!(forest_mortgage_entries -> forest_mortgages (mortgage_id));

diesel::table! {
    parcel_freezes (id) {
        id -> BigInt,
        parcel_id -> BigInt,
        court -> Text,
        case_no -> Text,
        document_ref -> Text,
        status -> Text,
        ordered_by -> Text,
        ordered_at -> Timestamp,
        lift_document_ref -> Nullable<Text>,
        lifted_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(parcel_freezes -> forest_parcels (parcel_id));

diesel::table! {
    parcel_holders (parcel_id, party_id) {
        parcel_id -> BigInt,
        party_id -> BigInt,
        share_bp -> Integer,
    }
}

diesel::joinable!(parcel_holders -> forest_parcels (parcel_id));

diesel::table! {
    lender_products (id) {
        id -> BigInt,
        lender_id -> BigInt,
        code -> Text,
        name -> Text,
        forest_ltv_cap_bp -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    benchmark_prices (id) {
        id -> BigInt,
        right_type -> Text,
        sub_kind -> Nullable<Text>,
        region_code -> Text,
        unit_price -> BigInt,
        valid_from -> Date,
        valid_to -> Nullable<Date>,
        document_ref -> Text,
        proposal_id -> BigInt,
        proposed_by -> Text,
        approved_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    region_flags (id) {
        id -> BigInt,
        region_code -> Text,
        pollutant -> Text,
        non_attainment -> Bool,
        document_ref -> Text,
        set_by -> Text,
        at -> Timestamp,
        proposal_id -> Nullable<BigInt>,
        approved_by -> Nullable<Text>,
    }
}

diesel::table! {
    listings (id) {
        id -> BigInt,
        lot_id -> BigInt,
        seller_id -> BigInt,
        pledge_id -> Nullable<BigInt>,
        quantity -> BigInt,
        remaining -> BigInt,
        unit_price -> BigInt,
        years -> Nullable<Integer>,
        min_lot -> BigInt,
        ends_at -> Timestamp,
        restriction -> Text,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    auctions (id) {
        id -> BigInt,
        lot_id -> BigInt,
        seller_id -> BigInt,
        pledge_id -> Nullable<BigInt>,
        quantity -> BigInt,
        reserve_price -> BigInt,
        increment -> BigInt,
        min_bid -> BigInt,
        max_bid -> BigInt,
        years -> Nullable<Integer>,
        opens_at -> Timestamp,
        closes_at -> Timestamp,
        extension_minutes -> Integer,
        sealed -> Bool,
        uniform_price -> Bool,
        restriction -> Text,
        deposit -> BigInt,
        status -> Text,
        clearing_price -> Nullable<BigInt>,
        allocated -> BigInt,
        bid_count -> Integer,
        closed_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    auction_bidders (auction_id, party_id) {
        auction_id -> BigInt,
        party_id -> BigInt,
        deposit -> BigInt,
        deposit_ref -> Text,
        registered_by -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    bids (id) {
        id -> BigInt,
        auction_id -> BigInt,
        party_id -> BigInt,
        unit_price -> BigInt,
        quantity -> BigInt,
        status -> Text,
        allocated -> BigInt,
        placed_at -> Timestamp,
    }
}

diesel::table! {
    trades (id) {
        id -> BigInt,
        lot_id -> BigInt,
        seller_id -> BigInt,
        buyer_id -> BigInt,
        listing_id -> Nullable<BigInt>,
        auction_id -> Nullable<BigInt>,
        pledge_id -> Nullable<BigInt>,
        quantity -> BigInt,
        unit_price -> BigInt,
        years -> Nullable<Integer>,
        amount -> BigInt,
        buyer_fee -> BigInt,
        seller_fee -> BigInt,
        status -> Text,
        trade_date -> Date,
        pay_by -> Timestamp,
        payment_ref -> Nullable<Text>,
        transfer_id -> Nullable<BigInt>,
        confirmed_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(trades -> lots (lot_id));

diesel::joinable!(party_events -> parties (party_id));
diesel::joinable!(compliance_flags -> parties (party_id));
diesel::joinable!(principals -> parties (party_id));

diesel::table! {
    financing_requests (id) {
        id -> BigInt,
        applicant_id -> BigInt,
        amount -> BigInt,
        term_months -> Integer,
        purpose -> Text,
        green_tag -> Text,
        lot_id -> BigInt,
        quantity -> BigInt,
        collateral_value -> Nullable<BigInt>,
        valuation_method -> Text,
        valued_on -> Date,
        status -> Text,
        bank_id -> Nullable<BigInt>,
        pledge_id -> Nullable<BigInt>,
        taken_at -> Nullable<Timestamp>,
        response_due -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    financing_request_events (id) {
        id -> BigInt,
        request_id -> BigInt,
        event -> Text,
        bank_id -> Nullable<BigInt>,
        detail -> Text,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    acquisitions,
    settings,
    parties,
    party_events,
    compliance_flags,
    principals,
    idempotency_keys,
    audit_chain_heads,
    audit_events,
    audit_checkpoints,
    right_types,
    proposals,
    lots,
    holdings,
    serial_ranges,
    movements,
    transfers,
    retirements,
    pledges,
    pledge_entries,
    judicial_freezes,
    objections,
    search_certificates,
    webhook_endpoints,
    webhook_deliveries,
    signing_keys,
    forest_parcels,
    forest_mortgages,
    forest_mortgage_parcels,
    forest_mortgage_entries,
    parcel_freezes,
    parcel_holders,
    lender_products,
    benchmark_prices,
    region_flags,
    listings,
    auctions,
    auction_bidders,
    bids,
    trades,
);

diesel::table! {
    environmental_credit_grades (id) {
        id -> BigInt,
        party_id -> BigInt,
        grade -> Text,
        source_document -> Text,
        valid_from -> Date,
        valid_to -> Nullable<Date>,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    credit_enhancements (id) {
        id -> BigInt,
        encumbrance_kind -> Text,
        encumbrance_id -> BigInt,
        kind -> Text,
        guarantor_id -> Nullable<BigInt>,
        guaranteed_share_bp -> Nullable<Integer>,
        insurer -> Nullable<Text>,
        policy_no -> Nullable<Text>,
        amount -> BigInt,
        beneficiary_id -> Nullable<BigInt>,
        term_from -> Date,
        term_to -> Date,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}
