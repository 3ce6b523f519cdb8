module github.com/slotwatch/slotwatch/services/slotctl

go 1.26.8
