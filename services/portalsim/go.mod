module github.com/slotwatch/slotwatch/services/portalsim

go 1.26.8
