-- The bench scripts' request: one binary-mode CloudEvent, the JSON body of
-- the currency examples (wrk -s scripts/bench-event.lua).
wrk.method = "POST"
wrk.body = '{"base":"USD","quote":"EUR","rate":0.92,"amount":100}'
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-1"
wrk.headers["ce-source"] = "/bench"
wrk.headers["ce-type"] = "dev.sluice.bench"
wrk.headers["content-type"] = "application/json"
