module github.com/ledgermq/ledgermq

go 1.26
