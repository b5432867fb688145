-- The graduatoria of a ranked call (issue 4 point 4): each evaluator's declaration about conflicts of interest per
-- application (immutable, except that "no conflict" may become a conflict), each evaluator's points per criterion of
-- the call's grid, and the ranking as published (frozen: its positions order the waiting list from then on).
CREATE TABLE grant_evaluation_declarations (
    application_id UUID NOT NULL REFERENCES grant_applications(id),
    evaluator_id UUID NOT NULL REFERENCES accounts(id),
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    conflict BOOLEAN NOT NULL,
    -- Why there is a conflict (kept); NULL without one.
    reason TEXT,
    declared_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (application_id, evaluator_id)
);
CREATE INDEX grant_evaluation_declarations_call ON grant_evaluation_declarations(call_id, evaluator_id);

CREATE TABLE grant_evaluation_scores (
    application_id UUID NOT NULL REFERENCES grant_applications(id),
    evaluator_id UUID NOT NULL REFERENCES accounts(id),
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    criterion TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points >= 0),
    note TEXT NOT NULL DEFAULT '',
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (application_id, evaluator_id, criterion)
);
CREATE INDEX grant_evaluation_scores_call ON grant_evaluation_scores(call_id);

CREATE TABLE grant_rankings (
    call_id UUID PRIMARY KEY REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    published_at TIMESTAMPTZ NOT NULL,
    published_by UUID REFERENCES accounts(id)
);

-- One line per ranked application: its position, its total score in hundredths of a point, the amount it asked for
-- and where publication placed it. The waiting list of a ranked call is drawn in `position` order.
CREATE TABLE grant_ranking_entries (
    application_id UUID PRIMARY KEY REFERENCES grant_applications(id),
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    company_id UUID NOT NULL REFERENCES companies(id),
    position BIGINT NOT NULL,
    score BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    place TEXT NOT NULL CHECK (place IN ('admitted', 'waiting')),
    UNIQUE (call_id, position)
);
