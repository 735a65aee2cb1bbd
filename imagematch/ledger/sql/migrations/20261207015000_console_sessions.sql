-- Console sessions that end (issue 26): logout revokes a session in the ledger, so a copied cookie
-- stops working on every instance and after a restart. A revocation is kept until the session
-- would have expired anyway (then it is deleted by the next revocation).

create table if not exists console_session_revocations (
    session_id text primary key,
    expires_at timestamptz not null
);
create index if not exists console_session_revocations_expiry on console_session_revocations (expires_at);
alter table console_session_revocations enable row level security;

create or replace function imagematch_revoke_session(
    p_session_id text, p_expires_at timestamptz, p_now timestamptz
) returns boolean language plpgsql as $$
begin
    delete from console_session_revocations where expires_at < p_now;
    insert into console_session_revocations (session_id, expires_at)
    values (p_session_id, p_expires_at)
    on conflict (session_id) do nothing;
    return true;
end $$;

create or replace function imagematch_session_revoked(p_session_id text, p_now timestamptz)
returns boolean language sql stable as $$
    select exists (
        select 1 from console_session_revocations
        where session_id = p_session_id and expires_at >= p_now
    );
$$;

do $$
declare
    v_fn regprocedure;
    v_role text;
begin
    for v_fn in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname in ('imagematch_revoke_session', 'imagematch_session_revoked')
    loop
        execute format('alter function %s set search_path = %I, pg_temp', v_fn, current_schema());
        execute format('revoke execute on function %s from public', v_fn);
        foreach v_role in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = v_role) then
                execute format('revoke execute on function %s from %I', v_fn, v_role);
            end if;
        end loop;
        if exists (select 1 from pg_roles where rolname = 'service_role') then
            execute format('grant execute on function %s to service_role', v_fn);
        end if;
    end loop;
end $$;
