module github.com/slotwatch/slotwatch/services/portalsim

go 1.26.8

require github.com/slotwatch/slotwatch/services/platform v0.0.0-00010101000000-000000000000

replace github.com/slotwatch/slotwatch/services/platform => ../platform
