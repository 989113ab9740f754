module chord

go 1.19
