// Package usage records one row per request without slowing the request:
// records go into a bounded queue and a background writer stores them in
// batches, retrying failed batches and counting what it finally drops.
package usage
