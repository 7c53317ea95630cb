//! Default and disposal: the lender enforces, an operator sells the parcels, and each parcel's proceeds pay the mortgages on it by rank (R13).

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"principal": "200000.00", "interest": "9100.50", "costs": "1200.00"}))]
pub struct EnforceMortgage {
    pub principal: Dec,
    pub interest: Dec,
    pub costs: Dec,
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/enforce", tag = "forest", operation_id = "enforceForestMortgage",
    summary = "The lender declares default and its outstanding claim",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = EnforceMortgage, responses((status = 200, description = "Enforcing", body = MortgageView)))]
#[post("/v1/forest-mortgages/{id}/enforce")]
pub(super) async fn enforce(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<EnforceMortgage>,
) -> ApiResult<HttpResponse> {
    let r = body.value;
    let (claim, id) = ([r.principal, r.interest, r.costs], id.into_inner());
    encumbrance::enforce::<MortgageRow>(state, who, idem, id, &body.body_hash, claim, |_| Ok(()))
        .await
}

/// The exchange's sale of the mortgaged parcels (until the market module runs disposal).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"proceeds": "500000.00", "buyer_party_id": 9,
    "parcel_proceeds": [{"parcel_id": 1, "proceeds": "400000.00"}, {"parcel_id": 2, "proceeds": "100000.00"}]}))]
pub struct DisposeMortgage {
    /// The whole sale.
    pub proceeds: Dec,
    pub buyer_party_id: i64,
    /// What each parcel sold for; required when the mortgage burdens more than one parcel, and
    /// adding up to `proceeds`. Each parcel's proceeds pay the mortgages on that parcel only.
    pub parcel_proceeds: Option<Vec<ParcelProceeds>>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParcelProceeds {
    pub parcel_id: i64,
    pub proceeds: Dec,
}

/// Each parcel's proceeds in fen, in parcel id order, checked against the parcels sold.
pub(super) fn proceeds_by_parcel(
    parcels: &[i64],
    total: i64,
    given: Option<&[ParcelProceeds]>,
) -> ApiResult<Vec<(i64, i64)>> {
    let Some(given) = given else {
        return match parcels {
            [one] => Ok(vec![(*one, total)]),
            _ => Err(ApiError::unprocessable(
                "parcel_proceeds_required",
                "the mortgage burdens several parcels: state what each sold for (parcel_proceeds), \
                 since each parcel's proceeds pay only the mortgages on that parcel",
            )),
        };
    };
    let mut out = Vec::new();
    for p in parcels {
        let mut of_p = given.iter().filter(|g| g.parcel_id == *p);
        let (Some(g), None) = (of_p.next(), of_p.next()) else {
            return Err(ApiError::invalid_field(
                "parcel_proceeds",
                format!("name parcel {p} exactly once"),
            ));
        };
        out.push((*p, fen("parcel_proceeds.proceeds", g.proceeds, true)?));
    }
    if given.len() != parcels.len() {
        return Err(ApiError::invalid_field(
            "parcel_proceeds",
            "names a parcel the mortgage does not burden",
        ));
    }
    if out.iter().map(|(_, f)| *f).sum::<i64>() != total {
        return Err(ApiError::invalid_field(
            "parcel_proceeds",
            "the parcels' proceeds do not add up to proceeds",
        ));
    }
    Ok(out)
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/dispose", tag = "forest", operation_id = "disposeForestMortgage",
    summary = "An operator proposes the sale; once a second operator approves, each parcel's proceeds pay the registered mortgages on that parcel by their ranks there, each up to its claim; the rest of each parcel to its holder",
    description = "Checked now and again at approval (`POST /v1/proposals/{id}/approve`, by another person); the sale happens at approval.",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = DisposeMortgage, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "parcel_frozen: a sold parcel is under a judicial freeze", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "parcel_proceeds_required", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/dispose")]
pub(super) async fn dispose(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<DisposeMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    fen("proceeds", r.proceeds, true)?;
    let (id, actor, w) = (id.into_inner(), who.actor(), who.clone());
    let kind = crate::proposals::ProposalKind::ForestDisposal;
    encumbrance::propose(state, who, idem, &body.body_hash, kind, move |conn, now| {
        visible(conn, &w, id)?;
        let asked = ForestDisposal {
            mortgage_id: id,
            sale: r,
        };
        execute_disposal(conn, &asked, &actor, now, false)?;
        Ok(asked)
    })
    .await
}

/// What a forest-mortgage disposal proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct ForestDisposal {
    pub mortgage_id: i64,
    pub sale: DisposeMortgage,
}

/// Checks a disposal (buyer, parcels' proceeds, no frozen parcel) and, when `carry_out`, sells.
pub fn execute_disposal(
    conn: &mut DbConn,
    d: &ForestDisposal,
    actor: &str,
    now: NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    let (id, r) = (d.mortgage_id, &d.sale);
    let proceeds = fen("proceeds", r.proceeds, true)?;
    let (m, ()) = encumbrance::lock::<MortgageRow>(conn, None, id, now)?;
    require_status(&m, &["enforcing"])?;
    let buyer = crate::parties::store::find(conn, r.buyer_party_id)?;
    if buyer.is_none_or(|b| b.kind == "bank" || b.kind == "regulator") {
        return Err(ApiError::invalid_field(
            "buyer_party_id",
            "a registered enterprise or individual",
        ));
    }
    // The mortgagor may have ended (its lender still enforces); the buyer takes part anew.
    crate::parties::store::require_active(conn, r.buyer_party_id)?;
    let parcels: Vec<i64> = fmp::table
        .filter(fmp::mortgage_id.eq(id))
        .select(fmp::parcel_id)
        .order(fmp::parcel_id)
        .load(conn)?;
    let by_parcel = proceeds_by_parcel(&parcels, proceeds, r.parcel_proceeds.as_deref())?;
    // Courts come first: no frozen parcel is sold until the freeze is lifted.
    for (p, _) in mortgage_parcels(conn, id)? {
        crate::forest::freezes::require_unfrozen(conn, &p)?;
    }
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    // Each parcel with its own registered mortgages in its own rank order (R9, R14).
    let mut sales = Vec::new();
    let mut burdens: Vec<MortgageRow> = Vec::new();
    for (p, parcel_proceeds) in &by_parcel {
        let ranked = mortgages_on(conn, *p, &RANKED)?;
        sales.push(rules::ParcelSale {
            parcel_id: *p,
            proceeds: *parcel_proceeds,
            ranked: ranked.iter().map(|b| b.id).collect(),
        });
        for b in ranked {
            if !burdens.iter().any(|x| x.id == b.id) {
                burdens.push(b);
            }
        }
    }
    let claims: Vec<(i64, rules::SecuredClaim)> = burdens
        .iter()
        .map(|b| {
            let secured = b.secured_amount.unwrap_or(0);
            let claim = b.claim_amount.unwrap_or(secured);
            (b.id, rules::SecuredClaim { claim, secured })
        })
        .collect();
    let paid = rules::waterfall(&sales, &claims);
    let mut to_holders = Vec::new();
    for (p, rest) in &paid.to_holders {
        to_holders.push(
            json!({"parcel_id": p, "holders": crate::forest::holders(conn, *p)?, "amount": rest}),
        );
    }
    let rest: i64 = paid.to_holders.iter().map(|(_, r)| *r).sum();
    for b in &burdens {
        let amount = paid.paid_to(b.id);
        let from_parcels: Vec<_> = paid
            .payments
            .iter()
            .filter(|x| x.mortgage_id == b.id)
            .map(|x| json!({"parcel_id": x.parcel_id, "amount": x.amount}))
            .collect();
        let remainder = (b.id == id).then_some(rest);
        let sold_of_b: Vec<i64> = sales
            .iter()
            .filter(|s| s.ranked.contains(&b.id))
            .map(|s| s.parcel_id)
            .collect();
        let kept: Vec<i64> = fmp::table
            .filter(fmp::mortgage_id.eq(b.id))
            .filter(fmp::parcel_id.ne_all(&sold_of_b))
            .select(fmp::parcel_id)
            .order(fmp::parcel_id)
            .load(conn)?;
        let claim = claims
            .iter()
            .find(|(c, _)| *c == b.id)
            .map_or(0, |(_, c)| c.payable());
        let paid_before = b.paid_to_lender.unwrap_or(0);
        match rules::after_sale(kept.len(), claim, amount) {
            rules::AfterSale::Ends => {
                diesel::update(fm::table.find(b.id))
                    .set((
                        fm::status.eq("disposed"),
                        fm::proceeds.eq(b.proceeds.unwrap_or(0) + proceeds),
                        fm::paid_to_lender.eq(paid_before + amount),
                        fm::paid_to_mortgagor.eq(remainder),
                        fm::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    b,
                    "disposal",
                    json!({"proceeds": proceeds, "parcel_proceeds": by_parcel, "paid_to_lender": amount,
                    "paid_from_parcels": from_parcels, "to_holders": to_holders, "buyer": r.buyer_party_id}),
                    actor,
                    now,
                )?;
            }
            rules::AfterSale::Remains => {
                // The sold parcels pass to the buyer free of this mortgage; on its other parcels
                // it stays registered, at its rank there, securing what is still unpaid.
                let ranks_at_sale = sold_of_b
                    .iter()
                    .map(|p| Ok(json!({"parcel_id": p, "rank": current_rank(conn, *p, b.id)?})))
                    .collect::<ApiResult<Vec<_>>>()?;
                diesel::delete(
                    fmp::table
                        .filter(fmp::mortgage_id.eq(b.id))
                        .filter(fmp::parcel_id.eq_any(&sold_of_b)),
                )
                .execute(conn)?;
                let less = |v: Option<i64>| v.map(|v| (v - amount).max(0));
                let (secured_left, claim_left) = (less(b.secured_amount), less(b.claim_amount));
                diesel::update(fm::table.find(b.id))
                    .set((
                        fm::secured_amount.eq(secured_left),
                        fm::claim_amount.eq(claim_left),
                        fm::paid_to_lender.eq(paid_before + amount),
                        fm::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    b,
                    "parcels_sold",
                    json!({"sold_parcels": ranks_at_sale, "proceeds": proceeds, "parcel_proceeds": by_parcel,
                    "paid_to_lender": amount, "paid_from_parcels": from_parcels, "buyer": r.buyer_party_id,
                    "secured_amount": secured_left, "claim_amount": claim_left, "remaining_parcels": kept,
                    "sold_by": d.mortgage_id}),
                    actor,
                    now,
                )?;
            }
        }
    }
    for p in &parcels {
        crate::forest::set_holders(conn, *p, &[(r.buyer_party_id, 10_000)])?;
    }
    Ok(outcome(conn, id)?.body)
}
