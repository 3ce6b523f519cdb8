module github.com/slotwatch/slotwatch/services/notifier

go 1.26.8

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.26.0
	github.com/slotwatch/slotwatch/services/platform v0.0.0-00010101000000-000000000000
	github.com/wneessen/go-mail v0.8.1
	golang.org/x/time v0.16.0
)

require (
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261110000943-09e21b237f2c // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// Siblings in this repository: each module builds on its own (GOWORK=off).
replace github.com/slotwatch/slotwatch/services/platform => ../platform
