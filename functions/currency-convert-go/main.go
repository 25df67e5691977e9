// Converts an amount with the rate carried by an exchange-rate event; the
// Go twin of functions/currency-convert (same input, same reply).
//
// Input: JSON data {"base": "USD", "quote": "EUR", "rate": 0.92,
// "amount": 250.0} ("amount" defaults to 1). Reply: type
// dev.sluice.currency.converted, the input fields plus "converted"
// (rounded to cents), subject BASE/QUOTE.
package main

import (
	"fmt"
	"math"

	"sluice.dev/guest"
	"sluice.dev/guest/handler"
)

func init() { handler.Handle(handle) }

type rate struct {
	Base   *string  `json:"base"`
	Quote  *string  `json:"quote"`
	Rate   *float64 `json:"rate"`
	Amount *float64 `json:"amount"`
}

type converted struct {
	Base      string  `json:"base"`
	Quote     string  `json:"quote"`
	Rate      float64 `json:"rate"`
	Amount    float64 `json:"amount"`
	Converted float64 `json:"converted"`
}

func handle(e sluice.Event) (*sluice.Event, error) {
	var r rate
	if err := e.JSON(&r); err != nil {
		return nil, err
	}
	switch {
	case r.Base == nil:
		return nil, fmt.Errorf("invalid JSON data: missing field `base`")
	case r.Quote == nil:
		return nil, fmt.Errorf("invalid JSON data: missing field `quote`")
	case r.Rate == nil:
		return nil, fmt.Errorf("invalid JSON data: missing field `rate`")
	}
	amount := 1.0
	if r.Amount != nil {
		amount = *r.Amount
	}
	if !(*r.Rate > 0 && !math.IsInf(*r.Rate, 0)) {
		return nil, fmt.Errorf("rate must be a positive number, got %v", *r.Rate)
	}
	// Half away from zero, like Rust's f64::round in the Rust twin.
	cents := math.Round(amount * *r.Rate * 100)
	return e.ToBuilder().
		Type("dev.sluice.currency.converted").
		Subject(*r.Base + "/" + *r.Quote).
		JSON(converted{*r.Base, *r.Quote, *r.Rate, amount, cents / 100}).
		Build()
}

func main() {}
