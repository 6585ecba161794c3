package server

import (
	"time"

	"github.com/sluice-ai/sluice/store"
)

func storeQuery() store.UsageQuery {
	return store.UsageQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), GroupBy: store.GroupByModel}
}
