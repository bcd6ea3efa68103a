// The SQL of the access log aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 access_log/sql.rs` (CI checks it).

use super::TREE_SIZE;
use crate::portable::corrupt;
use crate::{
    AccessLogStore, AuditEvent, BoxFuture, CheckpointRow, CosignatureRow, HistoryFilter, HistoryRow, IndexedHash,
    Result, SequencedEvent, StoreError, UnixTime,
};
use authz::Grant;
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

/// Files the events from `from` to `below` that an incident's scope reads (served, about a
/// patient) under their session, or their account when there is none, and notes every event
/// below `below` as filed (migration 0024). Called by the tree builder in the transaction that
/// adds the events' leaves; the engine copies the rows, in key order.
async fn file_by_actor(tx: &mut <Db as sqlx::Database>::Connection, from: i64, below: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_by_actor (actor, seq, account, at_ms, module, action, object_type, object_id, patient_id, \
         practice_id) \
         SELECT COALESCE(session_id, actor_account), seq, actor_account, at_ms, module, action, object_type, object_id, \
         patient_id, practice_id FROM audit_events \
         WHERE seq >= $1 AND seq < $2 AND outcome = 'allowed' AND patient_id IS NOT NULL \
         AND COALESCE(session_id, actor_account) IS NOT NULL ORDER BY 1, 2",
    )
    .bind(from)
    .bind(below)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_actor_keys (account, actor) \
         SELECT DISTINCT actor_account, COALESCE(session_id, actor_account) FROM audit_events \
         WHERE seq >= $1 AND seq < $2 AND outcome = 'allowed' AND patient_id IS NOT NULL \
         AND actor_account IS NOT NULL ON CONFLICT (account, actor) DO NOTHING",
    )
    .bind(from)
    .bind(below)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_filed (singleton, below) VALUES (1, $1) \
         ON CONFLICT (singleton) DO UPDATE SET below = excluded.below",
    )
    .bind(below)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) fn event_row(r: &DbRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        actor_account: r.try_get("actor_account")?,
        actor_role: r.try_get("actor_role")?,
        actor_practice: r.try_get("actor_practice")?,
        session: r.try_get("session_id")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        on_behalf: r.try_get("on_behalf")?,
        action: r.try_get("action")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        patient: r.try_get("patient_id")?,
        practice: r.try_get("practice_id")?,
        outcome: r.try_get("outcome")?,
        request_id: r.try_get("request_id")?,
        module: r.try_get("module")?,
        format: u8::try_from(r.try_get::<i16, _>("format")?).map_err(|_| corrupt("event format"))?,
    })
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt("hash is not 32 bytes"))
}

fn checkpoint_row(r: &DbRow) -> Result<CheckpointRow> {
    Ok(CheckpointRow {
        size: u64::try_from(r.try_get::<i64, _>("size")?).map_err(|_| corrupt("checkpoint size"))?,
        root: r.try_get("root")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
    })
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| corrupt("number out of range"))
}

fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt("negative sequence number"))
}

impl AccessLogStore for This {
    fn append_audit_events<'a>(&'a self, events: &'a [AuditEvent]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.append_audit_events_marking(events, &[]).await.map(|_| ()) })
    }

    fn append_audit_events_marking<'a>(
        &'a self,
        events: &'a [AuditEvent],
        marks: &'a [crate::Mark],
    ) -> BoxFuture<'a, Result<Vec<i64>>> {
        Box::pin(async move {
            // Under the append lock (SQLite's write lock; a table lock on PostgreSQL),
            // so the numbering is gap-free and single across nodes.
            let (mut tx, mut seq) = self.begin_audit_append().await?;
            // Multi-row INSERTs: per-statement overhead, not rows, dominates. 19
            // parameters a row keeps 100 rows well inside both engines' limits.
            for chunk in events.chunks(100) {
                let mut q = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO audit_events (seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, \
                     user_agent, on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(seq)
                        .push_bind(e.id.as_str())
                        .push_bind(e.at_ms)
                        .push_bind(e.actor_account.as_deref())
                        .push_bind(e.actor_role.as_str())
                        .push_bind(e.actor_practice.as_deref())
                        .push_bind(e.session.as_deref())
                        .push_bind(e.ip.as_str())
                        .push_bind(e.user_agent.as_str())
                        .push_bind(e.on_behalf.as_deref())
                        .push_bind(e.action.as_str())
                        .push_bind(e.object_type.as_str())
                        .push_bind(e.object_id.as_str())
                        .push_bind(e.patient.as_deref())
                        .push_bind(e.practice.as_deref())
                        .push_bind(e.outcome.as_str())
                        .push_bind(e.request_id.as_str())
                        .push_bind(e.module.as_str())
                        .push_bind(i16::from(if e.format == 0 { audit::event::FORMAT_V2 } else { e.format }));
                    seq += 1;
                });
                q.build().execute(&mut *tx).await?;
            }
            // The detectors' counts, in the same transaction: counting costs no commit of its own.
            let counts = marks::mark_all_in(&mut tx, marks).await?;
            tx.commit().await?;
            Ok(counts)
        })
    }

    fn sequence_audit(&self, limit: i64) -> BoxFuture<'_, Result<(u64, [u8; 32])>> {
        Box::pin(async move {
            let mut tx = self.begin_audit_tree().await?;
            let size: i64 = sqlx::query(TREE_SIZE).fetch_one(&mut *tx).await?.try_get(0)?;
            let size = to_u64(size)?;
            let mut frontier = Vec::new();
            for (level, idx) in audit::merkle::frontier_levels(size) {
                let row = sqlx::query("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                    .bind(i32::try_from(level).map_err(|_| corrupt("level"))?)
                    .bind(to_i64(idx)?)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| corrupt("a node of the tree's right edge is missing"))?;
                frontier.push(hash32(row.try_get("hash")?)?);
            }
            let mut acc = audit::merkle::Accumulator::from_frontier(size, &frontier).map_err(corrupt)?;
            let rows = sqlx::query(
                "SELECT seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, on_behalf, \
                 action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format \
                 FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
            )
            .bind(to_i64(size)?)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut nodes: Vec<(i32, i64, [u8; 32])> = Vec::with_capacity(rows.len() * 2);
            let mut filed: Vec<(String, i64, i64)> = Vec::with_capacity(rows.len());
            for r in &rows {
                let event = event_row(r)?;
                let seq = acc.size();
                if to_u64(r.try_get("seq")?)? != seq {
                    return Err(corrupt("an event is missing before the end of the log"));
                }
                let leaf = event.leaf_hash();
                let completed = acc.push(leaf);
                for (level, idx, hash) in std::iter::once((0, seq, leaf)).chain(completed) {
                    nodes.push((i32::try_from(level).map_err(|_| corrupt("level"))?, to_i64(idx)?, hash));
                }
                if let Some(patient) = event.patient {
                    filed.push((patient, event.at_ms, to_i64(seq)?));
                }
            }
            for chunk in nodes.chunks(300) {
                let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO audit_nodes (level, idx, hash) ");
                q.push_values(chunk, |mut b, (level, idx, hash)| {
                    b.push_bind(*level).push_bind(*idx).push_bind(hash.to_vec());
                });
                q.build().execute(&mut *tx).await?;
            }
            // Filed in key order, so neighbouring entries share pages.
            filed.sort_unstable();
            for chunk in filed.chunks(300) {
                let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO audit_by_patient (patient_id, at_ms, seq) ");
                q.push_values(chunk, |mut b, (patient, at_ms, seq)| {
                    b.push_bind(patient.as_str()).push_bind(*at_ms).push_bind(*seq);
                });
                q.build().execute(&mut *tx).await?;
            }
            file_by_actor(&mut tx, to_i64(size)?, to_i64(acc.size())?).await?;
            tx.commit().await?;
            Ok((acc.size(), acc.root()))
        })
    }

    fn audit_tree_size(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let size: i64 = sqlx::query(TREE_SIZE).fetch_one(&self.pool).await?.try_get(0)?;
            to_u64(size)
        })
    }

    fn unsequenced_audit_count(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query(concat!("SELECT COUNT(*) FROM audit_events WHERE seq >= (", tree_size!(), ")"))
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            to_u64(n)
        })
    }

    fn audit_node_range(&self, level: u32, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<IndexedHash>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            )
            .bind(i32::try_from(level).map_err(|_| corrupt("level"))?)
            .bind(to_i64(from)?)
            .bind(to_i64(to)?)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| Ok((to_u64(r.try_get("idx")?)?, hash32(r.try_get("hash")?)?))).collect()
        })
    }

    fn audit_nodes<'a>(&'a self, keys: &'a [(u32, u64)]) -> BoxFuture<'a, Result<Vec<[u8; 32]>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for (level, idx) in keys {
                let row = sqlx::query("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                    .bind(i32::try_from(*level).map_err(|_| corrupt("level"))?)
                    .bind(to_i64(*idx)?)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                out.push(hash32(row.try_get("hash")?)?);
            }
            Ok(out)
        })
    }

    fn add_checkpoint<'a>(&'a self, c: &'a CheckpointRow) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
                .bind(to_i64(c.size)?)
                .bind(&c.root)
                .bind(&c.note)
                .bind(c.created_at)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<CheckpointRow>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size")
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(checkpoint_row).collect()
        })
    }

    fn latest_checkpoint(&self) -> BoxFuture<'_, Result<Option<CheckpointRow>>> {
        Box::pin(async move {
            sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(checkpoint_row)
                .transpose()
        })
    }

    fn checkpoint_at(&self, size: u64) -> BoxFuture<'_, Result<Option<CheckpointRow>>> {
        Box::pin(async move {
            sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints WHERE size = $1")
                .bind(to_i64(size)?)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(checkpoint_row)
                .transpose()
        })
    }

    fn add_cosignature<'a>(&'a self, c: &'a CosignatureRow, now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO audit_cosignatures (checkpoint_size, witness, signature_line, signed_at, received_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (checkpoint_size, witness) DO UPDATE \
                 SET signature_line = excluded.signature_line, signed_at = excluded.signed_at, received_at = excluded.received_at",
            )
            .bind(to_i64(c.checkpoint_size)?)
            .bind(&c.witness)
            .bind(&c.signature_line)
            .bind(c.signed_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn cosignatures(&self) -> BoxFuture<'_, Result<Vec<CosignatureRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT checkpoint_size, witness, signature_line, signed_at FROM audit_cosignatures ORDER BY checkpoint_size, witness",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(CosignatureRow {
                        checkpoint_size: to_u64(r.try_get("checkpoint_size")?)?,
                        witness: r.try_get("witness")?,
                        signature_line: r.try_get("signature_line")?,
                        signed_at: r.try_get("signed_at")?,
                    })
                })
                .collect()
        })
    }

    fn sequenced_events(&self, from: u64, limit: i64) -> BoxFuture<'_, Result<Vec<SequencedEvent>>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, \
                 on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format FROM audit_events \
                 WHERE seq >= $1 AND seq < (",
                tree_size!(),
                ") ORDER BY seq LIMIT $2",
            ))
            .bind(to_i64(from)?)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| Ok(SequencedEvent { seq: to_u64(r.try_get("seq")?)?, event: event_row(r)? })).collect()
        })
    }

    fn audit_seq_of<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT n.idx AS seq FROM audit_events e LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq WHERE e.id = $1",
            )
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
            match row {
                Some(r) => r.try_get::<Option<i64>, _>("seq")?.map(to_u64).transpose(),
                None => Err(StoreError::NotFound),
            }
        })
    }

    fn first_audit_seq_since(&self, at_ms: i64) -> BoxFuture<'_, Result<Option<u64>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT seq FROM audit_events WHERE at_ms >= $1 ORDER BY seq LIMIT 1")
                .bind(at_ms)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| to_u64(r.try_get("seq")?)).transpose()
        })
    }

    fn prune_audit<'a>(
        &'a self,
        below: u64,
        cutoff_ms: i64,
        note: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let below = to_i64(below)?;
            let mut tx = self.begin().await?;
            let young: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE seq < $1 AND at_ms >= $2")
                .bind(below)
                .bind(cutoff_ms)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if young > 0 {
                return Err(StoreError::Conflict("an event to be removed is younger than the retention period"));
            }
            sqlx::query("DELETE FROM audit_by_patient WHERE seq < $1").bind(below).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM audit_by_actor WHERE seq < $1").bind(below).execute(&mut *tx).await?;
            let gone = sqlx::query("DELETE FROM audit_events WHERE seq < $1").bind(below).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO audit_pruned (singleton, below, cutoff_ms, pruned_at, note) VALUES (1, $1, $2, $3, $4) \
                 ON CONFLICT (singleton) DO UPDATE SET below = excluded.below, cutoff_ms = excluded.cutoff_ms, \
                 pruned_at = excluded.pruned_at, note = excluded.note",
            )
            .bind(below)
            .bind(cutoff_ms)
            .bind(now)
            .bind(note)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(gone.rows_affected())
        })
    }

    fn audit_pruned(&self) -> BoxFuture<'_, Result<Option<crate::PrunedRecord>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT below, cutoff_ms, note FROM audit_pruned WHERE singleton = 1")
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| {
                Ok(crate::PrunedRecord {
                    below: to_u64(r.try_get("below")?)?,
                    cutoff_ms: r.try_get("cutoff_ms")?,
                    note: r.try_get("note")?,
                })
            })
            .transpose()
        })
    }

    fn patient_history<'a>(
        &'a self,
        grant: &'a Grant<authz::ViewAccessHistory>,
        f: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<HistoryRow>>> {
        Box::pin(async move {
            // Module filters are a short fixed list chosen by the application; they
            // are bound, never spliced.
            let types: Vec<String> = f.modules.clone();
            let all = types.is_empty();
            let pad = |i: usize| types.get(i).cloned().unwrap_or_default();
            // Filed events through the patient index; the few newer than the tree
            // (not filed yet) by a scan of the log's end.
            let rows = sqlx::query(concat!(
                "SELECT n.idx AS seq, e.id, e.at_ms, e.actor_account, e.actor_role, e.actor_practice, e.session_id, e.ip, \
                 e.user_agent, e.on_behalf, e.action, e.object_type, e.object_id, e.patient_id, e.practice_id, e.outcome, e.request_id, e.module, e.format \
                 FROM audit_events e LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq \
                 WHERE e.seq IN ( \
                     SELECT p.seq FROM audit_by_patient p WHERE p.patient_id = $1 AND p.at_ms >= $2 AND p.at_ms < $3 \
                     UNION ALL \
                     SELECT t.seq FROM audit_events t WHERE t.seq >= (",
                tree_size!(),
                ") AND t.patient_id = $1 AND t.at_ms >= $2 AND t.at_ms < $3) \
                 AND ($4 OR e.module IN ($5, $6, $7, $8)) \
                 AND ($10 = '' OR e.practice_id = $10 OR e.actor_practice = $10) \
                 ORDER BY e.at_ms DESC, e.id DESC LIMIT $9",
            ))
            .bind(grant.object().to_string())
            .bind(f.from_ms)
            .bind(f.to_ms)
            .bind(all)
            .bind(pad(0))
            .bind(pad(1))
            .bind(pad(2))
            .bind(pad(3))
            .bind(f.limit)
            // A practice's privacy officer sees only what happened at (or through) their
            // practice: not the patient's other practices, nor the patient's own doings.
            .bind(grant.via_practice().map(|p| p.to_string()).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
            let officer = grant.via_practice().is_some();
            rows.iter()
                .map(|r| {
                    let mut event = event_row(r)?;
                    if officer {
                        // Nor where anyone connected from.
                        event.ip = String::new();
                        event.user_agent = String::new();
                        event.session = None;
                    }
                    Ok(HistoryRow {
                        event,
                        seq: r.try_get::<Option<i64>, _>("seq")?.map(to_u64).transpose()?,
                        actor_name: None,
                        practice_name: None,
                    })
                })
                .collect()
        })
    }

    fn principal_events<'a>(
        &'a self,
        _grant: &'a Grant<authz::ExportAudit>,
        principal: &'a str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<AuditEvent>>> {
        Box::pin(async move {
            // The time index bounds the scan; the console asks for an alert's window only.
            let rows = sqlx::query(
                "SELECT id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, on_behalf, \
                 action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format \
                 FROM audit_events WHERE at_ms >= $1 AND at_ms < $2 AND (session_id = $3 OR actor_account = $3) \
                 ORDER BY at_ms, id LIMIT $4",
            )
            .bind(from_ms)
            .bind(to_ms)
            .bind(principal)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(event_row).collect()
        })
    }

    fn audit_range<'a>(
        &'a self,
        _grant: &'a Grant<authz::ExportAudit>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<AuditEvent>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, on_behalf, \
                 action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format \
                 FROM audit_events WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, id LIMIT $3",
            )
            .bind(from_ms)
            .bind(to_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(event_row).collect()
        })
    }
}
